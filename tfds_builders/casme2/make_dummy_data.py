"""Writes `tfds_builders/casme2/dummy_data/`: a tiny fake CASME II as a licensed user has it.

  python -m tfds_builders.casme2.make_dummy_data

Layout (DATASETS.md §2), 3 subjects x 2 clips of synthetic faces:
  CASME2-coding-20140508.xlsx    2014 format: Sheet1 with the two blank columns, Subject as text
                                 '01', apex '/' for sub04/EP12_01f (skipped), AU '?' and int AUs,
                                 onset == apex for sub02/EP09_05f (kept); empty Sheet2/Sheet3
  CASME2-ObjectiveClasses.xlsx   Sheet1 Subject/Filename/Objective Class, Sheet2 scratch rows
  CASME2-RAW/subNN/<clip>/img1.jpg ...                  whole clips, 96 px face in 120x160
  CASME2_RAW_selected/subNN/<clip>/img<onset..offset>.jpg   the same frames, onset..offset only
  Cropped/subNN/<clip>/reg_img<onset..offset>.jpg        48x48 face crops, onset..offset only
  Cropped/sub01/Desktop - Shortcut.lnk                   junk file reported in the real release
"""

from __future__ import annotations

import pathlib

from tfds_builders import dummy

DUMMY_DIR = pathlib.Path(__file__).parent / "dummy_data"

# subject, filename, onset, apex, offset, action units, emotion, frames in the raw clip,
# objective class. Frame numbers are the dataset's (1-based).
CLIPS = [
    ("01", "EP02_01f", 3, 5, 7, 12, "happiness", 9, 1),
    ("01", "EP03_02", 2, 4, 6, "?", "others", 8, 7),
    ("02", "EP06_01f", 2, 5, 7, 14, "repression", 9, 7),
    ("02", "EP09_05f", 3, 3, 6, "R2+15", "disgust", 8, 4),   # onset == apex: valid
    ("04", "EP12_01f", 2, "/", 6, "4+7", "disgust", 8, 3),   # apex '/': skipped
    ("04", "EP13_04", 4, 6, 8, "1+2", "surprise", 10, 2),
]
N_BUILT = 5  # every clip but sub04/EP12_01f
CODING_SHEET = "CASME2-coding-20140508.xlsx"


def coding_rows(clips=CLIPS) -> list[list]:
  """Sheet1 of the 2014 coding sheet: header, blank columns C and G, Subject as text."""
  rows = [["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
           "Action Units", "Estimated Emotion"]]
  for subject, filename, onset, apex, offset, aus, emotion, _, _ in clips:
    rows.append([subject, filename, None, onset, apex, offset, None, aus, emotion])
  return rows


def objective_rows(clips=CLIPS) -> list[list]:
  rows = [["Subject", "Filename", "Objective Class"]]
  rows += [[c[0], c[1], c[8]] for c in clips]
  return rows


def main() -> None:
  root = dummy.fresh(DUMMY_DIR)
  dummy.write_xlsx(root / CODING_SHEET, {"Sheet1": coding_rows(), "Sheet2": [], "Sheet3": []})
  # Sheet2 of the real file holds scratch rows without a header; the parser must ignore it.
  scratch = [row + [row[3], row[5], row[5] - row[3] + 1] for row in coding_rows()[1:3]]
  dummy.write_xlsx(root / "CASME2-ObjectiveClasses.xlsx",
                   {"Sheet1": objective_rows(), "Sheet2": scratch})
  for subject, filename, onset, apex, offset, _, emotion, n_frames, _ in CLIPS:
    key = f"casme2/sub{subject}/{filename}"
    clip = pathlib.Path(f"sub{subject}") / filename
    timing = dict(onset=onset - 1, offset=offset - 1,
                  apex=apex - 1 if isinstance(apex, int) else None)
    raw = dummy.render_frames(key, emotion, n_frames, size=96, canvas=(120, 160), **timing)
    numbers = range(1, n_frames + 1)
    dummy.write_frames(root / "CASME2-RAW" / clip, [f"img{n}.jpg" for n in numbers], raw)
    selected = range(onset, offset + 1)
    dummy.write_frames(root / "CASME2_RAW_selected" / clip, [f"img{n}.jpg" for n in selected],
                       raw[onset - 1:offset])
    cropped = dummy.render_frames(key, emotion, n_frames, size=48, **timing)
    dummy.write_frames(root / "Cropped" / clip, [f"reg_img{n}.jpg" for n in selected],
                       cropped[onset - 1:offset])
  (root / "Cropped" / "sub01" / "Desktop - Shortcut.lnk").write_bytes(b"L\x00\x00\x00junk")
  print(f"wrote {root}")


if __name__ == "__main__":
  main()
