"""Writes tfds_builders/oulu_casia/dummy_data/: a tiny fake Oulu-CASIA NIR&VIS release.

  python -m tfds_builders.oulu_casia.make_dummy_data

Two subjects, Strong illumination, both cameras, in both releases:
  OriginalImg/<VL|NI>/Strong/P001/Anger/000.jpeg ...   96 px faces on 120x160 frames (the real
                                                       ones are 320x240); NI frames grey
  PreProcess/<VL|NI>_Acropped/Strong/P001/Anger/000.jpeg ...   40 px crops (inner layout
                                                               ASSUMED to mirror OriginalImg)
P002/Surprise lacks frame 002 in every tree -> recorded skip (missing frame number).
Expected per config (vl_strong, ni_strong, vl_cropped, ni_cropped): 3 clips built, 1 skipped.
"""

from __future__ import annotations

import pathlib

from tfds_builders import dummy

ROOT = pathlib.Path(__file__).parent / "dummy_data"
SEQUENCES = [("P001", "Anger", 5), ("P001", "Happiness", 4), ("P002", "Disgust", 4),
             ("P002", "Surprise", 5)]
MISSING_FRAME = ("P002/Surprise", 2)


def main() -> None:
  root = dummy.fresh(ROOT)
  for camera in ("VL", "NI"):
    grey = camera == "NI"  # near-infrared frames are grey
    for subject, expression, n_frames in SEQUENCES:
      key = f"{subject}/{expression}"
      marks = dict(onset=1, apex=n_frames - 1, offset=n_frames - 1)  # neutral -> peak
      names = [f"{n:03d}.jpeg" for n in range(n_frames)]
      # The same key, hence the same synthetic face, for both cameras (they film one sitting).
      raw = dummy.render_frames(key, expression, n_frames, size=96,
                                canvas=(120, 160), grey=grey, **marks)
      cropped = dummy.render_frames(key, expression, n_frames, size=40,
                                    grey=grey, **marks)
      for folder, frames in ((root / "OriginalImg" / camera / "Strong" / key, raw),
                             (root / "PreProcess" / f"{camera}_Acropped" / "Strong" / key,
                              cropped)):
        dummy.write_frames(folder, names, frames)
        if MISSING_FRAME[0] == key:
          (folder / f"{MISSING_FRAME[1]:03d}.jpeg").unlink()


if __name__ == "__main__":
  main()
