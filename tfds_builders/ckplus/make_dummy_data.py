"""Writes tfds_builders/ckplus/dummy_data/: a tiny fake CK+ release.

  python -m tfds_builders.ckplus.make_dummy_data

Three subjects, PNG frames `cohn-kanade-images/S005/001/S005_001_00000001.png` (96 px faces on
122x160 frames, the 640x490 aspect; single-channel grey like most CK+ subjects, S010 in
colour), one `Emotion/.../*_emotion.txt` per labelled sequence ("   3.0000000e+00"), and
`FACS/.../*_facs.txt` for some. Quirks and bad input included:
  * S005/002 and S010/001 have an EMPTY Emotion folder (normal in CK+: unlabelled, not samples);
  * S011/001's emotion file holds no number -> recorded skip naming the file;
  * S010/003 lacks frame 3 -> recorded skip (missing frame number);
  * S011/002 has no FACS folder -> AUs "".
Expected: 3 clips built (S005/001, S010/002, S011/002), 2 skipped.
"""

from __future__ import annotations

import pathlib

import cv2

from tfds_builders import dummy

ROOT = pathlib.Path(__file__).parent / "dummy_data"
# sequence, frames, emotion file text (None: empty Emotion folder), FACS lines, colour
SEQUENCES = [
    ("S005/001", 5, "   3.0000000e+00", ["9.0000000e+00   4.0000000e+00",
                                          "1.7000000e+01   2.0000000e+00"], False),
    ("S005/002", 3, None, None, False),
    ("S010/001", 3, None, None, True),
    ("S010/002", 5, "   5.0000000e+00", ["6.0000000e+00   0.0000000e+00",
                                          "1.2000000e+01   3.0000000e+00"], True),
    ("S010/003", 5, "   7.0000000e+00", ["1.0000000e+00   2.0000000e+00"], True),
    ("S011/001", 5, "n/a", None, False),
    ("S011/002", 5, "   2.0000000e+00", None, False),
]
_EMOTIONS = {"3": "disgust", "5": "happiness", "7": "surprise", "2": "contempt"}
MISSING_FRAME = ("S010/003", 3)


def main() -> None:
  root = dummy.fresh(ROOT)
  for sequence, n_frames, emotion_text, facs, colour in SEQUENCES:
    subject, number = sequence.split("/")
    prefix = f"{subject}_{number}_"
    emotion = _EMOTIONS.get((emotion_text or "").strip()[:1], "neutral")
    frames = dummy.render_frames(sequence, emotion, n_frames, size=96, canvas=(122, 160),
                                 grey=not colour, onset=1, apex=n_frames - 1,
                                 offset=n_frames - 1)
    names = [f"{prefix}{n:08d}.png" for n in range(1, n_frames + 1)]
    images = root / "cohn-kanade-images" / sequence
    if colour:
      dummy.write_frames(images, names, frames)
    else:
      _write_grey_png(images, names, frames)
    if MISSING_FRAME[0] == sequence:
      (images / f"{prefix}{MISSING_FRAME[1]:08d}.png").unlink()
    peak = f"{prefix}{n_frames:08d}"
    (root / "Emotion" / sequence).mkdir(parents=True)
    if emotion_text is not None:
      (root / "Emotion" / sequence / f"{peak}_emotion.txt").write_text(emotion_text + "\n")
    else:  # git keeps no empty folder: a placeholder (not an emotion file) keeps it in the repo
      (root / "Emotion" / sequence / ".gitkeep").write_text("")
    if facs is not None:
      (root / "FACS" / sequence).mkdir(parents=True)
      (root / "FACS" / sequence / f"{peak}_facs.txt").write_text(
          "".join(f"   {line}\n" for line in facs))


def _write_grey_png(folder: pathlib.Path, names: list[str], frames) -> None:
  # Grey CK+ frames are single-channel PNGs (a third of the bytes of an RGB copy).
  folder.mkdir(parents=True, exist_ok=True)
  for name, frame in zip(names, frames, strict=True):
    ok, data = cv2.imencode(".png", frame[..., 0])
    assert ok, name
    (folder / name).write_bytes(data.tobytes())


if __name__ == "__main__":
  main()
