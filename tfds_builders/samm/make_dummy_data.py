"""Writes `tfds_builders/samm/dummy_data/`: a tiny fake SAMM as a licensed user has it.

  python -m tfds_builders.samm.make_dummy_data

Layout (manual_dir = dummy_data, the release one folder down, like `~/data/SAMM`):
  SAMM/SAMM_Micro_FACS_Codes_v2.xlsx   sheet MICRO_ONLY, 13-row preamble, header on row 14,
                                       Subject as text '006', Duration as a formula
  SAMM/<subject>/<Filename>/<subject>_<frame:05d>.jpg   grey frames, a ~96 px face in a
                                       120x160 canvas (the real ones are 960x650)
Rows: 4 good clips of 3 subjects, and 2 bad ones that the build records as skipped:
  011_5_1  apex typo (apex after offset, like the real 028_4_1): skipped by records.validate;
  011_2_1  annotated frames beyond the frames in its folder.
"""

from __future__ import annotations

import pathlib

import cv2

from tfds_builders import dummy

HERE = pathlib.Path(__file__).parent
HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
          "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
PREAMBLE = [
    ["SAMM Dataset - Master FACS Codes (DUMMY: synthetic faces, not SAMM data)"],
    [],
    ["9/9/17 - New updates with Emotional and Objective Classes."],
    [],
    [],
    ["Symbol Key:"],
    ['"/" = or'],
    ['"?" = some AU\'s continue for a while and have unclear offset'],
    [],
    ["AU Help:"],
    ['"L2 or R2" = Unilateral AU 2 on left side of face / right side of face'],
    ['"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side'],
    [],
]
# (subject, filename, onset, apex, offset, AUs, emotion, objective class, first frame on disk,
#  frames on disk)
CLIPS = [
    ("006", "006_1_2", 5561, 5563, 5566, "4+7 ", "Anger", 3, 5560, 8),
    ("006", "006_2_4", 180, 182, 184, "R12 or R14", "Happiness", 1, 179, 7),
    ("007", "007_3_1", 1002, 1004, 1006, 2, "Surprise", 2, 1001, 7),
    ("007", "007_4_1", 88, 90, 91, "24", "Other", 7, 87, 6),
    ("011", "011_5_1", 3300, 3310, 3304, "A12", "Contempt", 7, 3299, 7),   # apex typo
    ("011", "011_2_1", 400, 402, 409, "L10", "Disgust", 4, 399, 6),       # frames missing
]


def _write_grey_jpgs(folder: pathlib.Path, names, frames) -> None:
  # SAMM's frames are single-channel JPEGs.
  folder.mkdir(parents=True, exist_ok=True)
  for name, frame in zip(names, frames, strict=True):
    ok, data = cv2.imencode(".jpg", frame[:, :, 0], [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
      raise RuntimeError(f"cannot encode {name}")
    (folder / name).write_bytes(data.tobytes())


def main() -> None:
  root = dummy.fresh(HERE / "dummy_data") / "SAMM"
  rows = [list(r) for r in PREAMBLE] + [HEADER]
  for number, (subject, filename, onset, apex, offset, aus, emotion, objective, first,
               count) in enumerate(CLIPS, start=len(PREAMBLE) + 2):
    rows.append([subject, filename, int(filename.split("_")[1]), onset, apex, offset,
                 f"=SUM(F{number}-D{number})+1", "Micro - 1/2", aus, emotion, objective, None])
    # One identity per subject (the key), placed where the subject sat in the canvas.
    frames = dummy.render_frames(
        f"SAMM/{subject}", emotion, count, size=96, canvas=(120, 160), grey=True,
        onset=onset - first, apex=min(apex, offset) - first, offset=min(offset, first + count - 1)
        - first)
    _write_grey_jpgs(root / subject / filename,
                     [f"{subject}_{first + i:05d}.jpg" for i in range(count)], frames)
  dummy.write_xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", {"MICRO_ONLY": rows})


if __name__ == "__main__":
  main()
