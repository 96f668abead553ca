"""Oulu-CASIA NIR&VIS: labels from folder names, one camera x illumination at a time.

Layout (DATASETS.md §8):
  OriginalImg/VL/Strong/P001/Anger/000.jpeg, 001.jpeg, ...   # VL visible, NI near-infrared
  OriginalImg/NI/{Strong,Weak,Dark}/P0xx/<Expression>/NNN.jpeg
  PreProcess/{VL_Acropped,NI_Acropped}/...                    # cropped release
The inner layout of `PreProcess/<CAM>_Acropped/` is not documented; it is ASSUMED to mirror
OriginalImg's `<Illumination>/P001/<Expression>/NNN.jpeg` (release="PreProcess").

Expression folders Anger, Disgust, Fear, Happiness, Sadness, Surprise -> emotion lower case.
Sequences run neutral -> peak: onset = the first frame, apex = offset = the last frame (the
users' convention; the release annotates no timing). Subject `P001`, sample id `P001/Anger`,
25 fps. Raw NI frames are grey (near-infrared); the builder stores them as RGB.
"""

from __future__ import annotations

import pathlib
import re

from mejax.annotations import records

DATASET = "oulu_casia"
FPS = 25.0
CAMERAS = ("VL", "NI")
ILLUMINATIONS = ("Strong", "Weak", "Dark")
RELEASES = ("OriginalImg", "PreProcess")
EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
FRAME_PATTERN = r"(?P<n>\d+)\.jpe?g"
_SUBJECT = re.compile(r"P\d+", re.IGNORECASE)


def candidate_folders(path: pathlib.Path, camera: str, illumination: str,
                      release: str) -> list[pathlib.Path]:
  """Where the subject folders of one camera x illumination may lie, for `path` = the dataset
  root, the release folder or the camera folder."""
  camera_folder = camera if release == "OriginalImg" else f"{camera}_Acropped"
  return [path / release / camera_folder / illumination, path / camera_folder / illumination,
          path / illumination]


def subjects_folder(path: str | pathlib.Path, camera: str = "VL", illumination: str = "Strong",
                    release: str = "OriginalImg") -> pathlib.Path:
  """The folder holding P001/ ... of one camera x illumination (FileNotFoundError listing the
  places looked at when none exists)."""
  if camera not in CAMERAS:
    raise ValueError(f"Unknown camera {camera!r}; expected one of {CAMERAS}")
  if illumination not in ILLUMINATIONS:
    raise ValueError(f"Unknown illumination {illumination!r}; expected one of {ILLUMINATIONS}")
  if release not in RELEASES:
    raise ValueError(f"Unknown release {release!r}; expected one of {RELEASES}")
  path = pathlib.Path(path)
  if not path.is_dir():
    what = "is a file" if path.exists() else "does not exist"
    raise FileNotFoundError(f"{DATASET}: {path} {what}; expected the Oulu-CASIA folder "
                            f"holding {release}/{camera}/{illumination}/P001/<Expression>/")
  candidates = candidate_folders(path, camera, illumination, release)
  for folder in candidates:
    if folder.is_dir():
      return folder
  assumed = (" (PreProcess's inner layout is assumed to mirror OriginalImg's "
             "<Illumination>/P001/<Expression>/NNN.jpeg)" if release == "PreProcess" else "")
  raise FileNotFoundError(
      f"{DATASET}: no {camera}/{illumination} folder of the {release} release under {path}; "
      f"looked for {', '.join(str(c) for c in candidates)}, each holding "
      f"P001/<Expression>/000.jpeg{assumed}")


def parse(path: str | pathlib.Path, repair: str = "skip", camera: str = "VL",
          illumination: str = "Strong", release: str = "OriginalImg") -> records.Parsed:
  """Samples of one camera x illumination; Sample.clip is relative to `path`."""
  if repair not in records.REPAIR_POLICIES:
    raise ValueError(f"Unknown repair policy {repair!r}; expected one of "
                     f"{records.REPAIR_POLICIES}")
  path = pathlib.Path(path)
  folder = subjects_folder(path, camera, illumination, release)
  parsed = records.Parsed()
  frame = re.compile(FRAME_PATTERN, re.IGNORECASE)
  for subject in sorted(p for p in folder.iterdir() if p.is_dir()):
    for expression in sorted(p for p in subject.iterdir() if p.is_dir()):
      clip = expression.relative_to(path).as_posix()
      sample_id = f"{subject.name}/{expression.name}"
      emotion = expression.name.lower()
      problem = None
      if not _SUBJECT.fullmatch(subject.name):
        problem = f"folder {subject.name!r} is not a subject folder P<NNN>"
      elif emotion not in EMOTIONS:
        problem = (f"folder {expression.name!r} is not an expression folder "
                   f"({', '.join(e.capitalize() for e in EMOTIONS)})")
      numbers = sorted(int(m.group("n")) for p in expression.iterdir()
                       if (m := frame.fullmatch(p.name)))
      if problem is None and not numbers:
        problem = "no frames NNN.jpeg"
      if problem:
        parsed.skipped.append(records.Skip(DATASET, sample_id, clip, problem))
        continue
      parsed.samples.append(records.Sample(
          dataset=DATASET, sample_id=sample_id, subject=subject.name, clip=clip,
          emotion=emotion, three_class=records.three_class(DATASET, emotion), fps=FPS,
          onset=numbers[0], apex=numbers[-1], offset=numbers[-1], source=clip))
  return parsed
