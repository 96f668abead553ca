"""Writes tfds_builders/mug/dummy_data/: a tiny fake MUG `subjects3` release.

  python -m tfds_builders.mug.make_dummy_data

Two subjects, JPEG frames `subjects3/001/anger/take000/img_0001.jpg` (96 px faces on 120x120
frames; the real ones are 896x896), with:
  * subject 002 using the optional `session<k>/` level;
  * 001/happiness/take001 numbered from img_0012 (numbering need not start at 1);
  * 002/session1/neutral/take002end, a take name some users filtered (kept as a sample);
  * 002/session2/sadness/take000 lacking img_0003 -> recorded skip (missing frame number).
Expected: 4 clips built, 1 skipped.
"""

from __future__ import annotations

import pathlib

from tfds_builders import dummy

ROOT = pathlib.Path(__file__).parent / "dummy_data"
# take folder (relative to subjects3), first frame number, number of frames
TAKES = [
    ("001/anger/take000", 1, 5),
    ("001/happiness/take001", 12, 5),
    ("002/session1/surprise/take003", 1, 4),
    ("002/session1/neutral/take002end", 1, 4),
    ("002/session2/sadness/take000", 1, 5),
]
MISSING_FRAME = ("002/session2/sadness/take000", 3)


def main() -> None:
  root = dummy.fresh(ROOT) / "subjects3"
  for take, first, n_frames in TAKES:
    emotion = take.split("/")[-2]
    # MUG sequences start and end neutral: the expression peaks mid-take.
    frames = dummy.render_frames(take, emotion, n_frames, size=96, canvas=(120, 120))
    numbers = range(first, first + n_frames)
    dummy.write_frames(root / take, [f"img_{n:04d}.jpg" for n in numbers], frames)
    if MISSING_FRAME[0] == take:
      (root / take / f"img_{MISSING_FRAME[1]:04d}.jpg").unlink()


if __name__ == "__main__":
  main()
