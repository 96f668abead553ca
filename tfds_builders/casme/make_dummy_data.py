"""Writes `tfds_builders/casme/dummy_data/`: a tiny fake CASME (v1) as a licensed user has it.

  python -m tfds_builders.casme.make_dummy_data      (needs `pip install xlwt`)

Layout (DATASETS.md §1), 3 subjects, 5 clips of synthetic faces (96 px in 120x160 frames):
  CASME/RAW/CASME_A/Section A/Section A.xls                  Sheet1, BIFF .xls like the real one
  CASME/RAW/CASME_A/Section A/sub01/EP01_5/img1.jpg ...      frames named img<N>.jpg
  CASME/RAW/CASME_A/Section A/sub02/EP10/EP10-1.jpg ...      frames named <Filename>-<N>.jpg
  CASME/RAW/CASME_B/Section B/Section B.xls
  CASME/RAW/CASME_B/Section B/sub08/EP02_1/EP02_1-001.jpg ...  3-digit zero-padded numbers
No real sheet is public: the columns are the documented ones (Subject as an int, Filename, a
blank column, OnsetF, ApexF1, ApexF2, OffsetF, a blank column, an AU column, Emotion in the
12th column); the AU column's header and the two blank columns before Emotion are our guess.
Quirks exercised: emotion spelled `comtempt` (read as contempt), capitalised `Disgust`, a row
with no apex (sub08/EP03: skipped).
"""

from __future__ import annotations

import pathlib

from tfds_builders import dummy

DUMMY_DIR = pathlib.Path(__file__).parent / "dummy_data"
RAW = pathlib.Path("CASME", "RAW")
SECTIONS = {"A": RAW / "CASME_A" / "Section A", "B": RAW / "CASME_B" / "Section B"}
HEADER = ["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "AUs",
          None, None, "Emotion"]

# section, subject, filename, onset, apex1, apex2, offset, AUs, emotion, frames in the clip,
# frame naming ("img": img<N>.jpg, "dash": <Filename>-<N>.jpg, "dash3": <Filename>-<NNN>.jpg).
CLIPS = [
    ("A", 1, "EP01_5", 2, 4, 5, 7, "12", "happiness", 8, "img"),
    ("A", 1, "EP01_6", 3, 5, None, 7, "4+9", "Disgust", 9, "img"),
    ("A", 2, "EP10", 2, 3, None, 6, 4, "tense", 8, "dash"),
    ("B", 8, "EP02_1", 2, 5, 6, 7, "14", "comtempt", 8, "dash3"),
    ("B", 8, "EP03", 2, None, None, 6, "1+2", "surprise", 8, "dash3"),  # no apex: skipped
]
N_BUILT = 4


def frame_name(filename: str, naming: str, number: int) -> str:
  if naming == "img":
    return f"img{number}.jpg"
  if naming == "dash":
    return f"{filename}-{number}.jpg"
  return f"{filename}-{number:03d}.jpg"


def sheet_rows(section: str, clips=CLIPS) -> list[list]:
  rows = [HEADER]
  for sec, subject, filename, onset, apex1, apex2, offset, aus, emotion, _, _ in clips:
    if sec == section:
      rows.append([subject, filename, None, onset, apex1, apex2, offset, None, aus, None, None,
                   emotion])
  return rows


def write_xls(path: pathlib.Path, rows: list[list], sheet: str = "Sheet1") -> None:
  """A BIFF8 .xls workbook (Excel 97-2003, the format of the real sheets) with one sheet."""
  try:
    import xlwt
  except ImportError:
    raise SystemExit("make_dummy_data for casme writes .xls files with xlwt, which is not "
                     "installed: pip install xlwt") from None
  book = xlwt.Workbook()
  worksheet = book.add_sheet(sheet)
  for r, row in enumerate(rows):
    for c, value in enumerate(row):
      if value is not None:
        worksheet.write(r, c, value)
  path.parent.mkdir(parents=True, exist_ok=True)
  book.save(str(path))


def main() -> None:
  root = dummy.fresh(DUMMY_DIR)
  for section, folder in SECTIONS.items():
    write_xls(root / folder / f"Section {section}.xls", sheet_rows(section))
  for section, subject, filename, onset, apex, _, offset, _, emotion, n_frames, naming in CLIPS:
    key = f"casme/sub{subject:02d}/{filename}"
    frames = dummy.render_frames(key, emotion, n_frames, size=96, canvas=(120, 160),
                                 onset=onset - 1, offset=offset - 1,
                                 apex=None if apex is None else apex - 1)
    names = [frame_name(filename, naming, n) for n in range(1, n_frames + 1)]
    dummy.write_frames(root / SECTIONS[section] / f"sub{subject:02d}" / filename, names, frames)
  print(f"wrote {root}")


if __name__ == "__main__":
  main()
