"""MUG Facial Expression Database (`subjects3` release): labels from folder names.

Layout (DATASETS.md §7), under `path` (the `subjects3` folder or the folder holding it):
  subjects3/001/anger/take000/img_0001.jpg ...
  subjects3/016/session1/happiness/take003/img_0150.jpg ...   # some subjects: a session level
Emotion folders: anger, disgust, fear, happiness, neutral, sadness, surprise. Every take folder
is one sample; frames are read by the builder (numbering need not start at 1, but must be
consecutive). MUG annotates no onset/apex/offset (sequences start and end neutral), so they stay
-1 and the whole take is stored.

Take folders whose name ends in `end` or contains `nsg` were filtered out by some users; what
they mean is UNVERIFIED, so they are kept as samples and only listed in the log. A folder that
is neither a session nor an emotion folder is kept out as a Skip naming it.

Subject = the subject folder (`001`); sample id `001/anger/take000`, or
`001/session1/anger/take000` with a session level. fps 19 [UNVERIFIED].
"""

from __future__ import annotations

import logging
import pathlib
import re

from mejax.annotations import records

log = logging.getLogger(__name__)

DATASET = "mug"
FPS = 19.0  # UNVERIFIED
RELEASE = "subjects3"
EMOTIONS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
_SESSION = re.compile(r"session\d+", re.IGNORECASE)


def release_root(path: str | pathlib.Path) -> pathlib.Path:
  """The `subjects3` folder: `path` itself, or `path/subjects3`."""
  path = pathlib.Path(path)
  if (path / RELEASE).is_dir():
    return path / RELEASE
  if path.is_dir() and path.name == RELEASE:
    return path
  found = (sorted(p.name for p in path.iterdir())[:20] if path.is_dir() else
           "it is a file, not a folder" if path.exists() else "it does not exist")
  raise FileNotFoundError(
      f"{DATASET}: no {RELEASE}/ folder at {path}; expected {RELEASE}/001/anger/take000/"
      f"img_0001.jpg (optionally {RELEASE}/001/session1/anger/...). Found: {found}")


def parse(path: str | pathlib.Path, repair: str = "skip") -> records.Parsed:
  """Samples of the MUG tree at `path`; Sample.clip is relative to the `subjects3` folder."""
  if repair not in records.REPAIR_POLICIES:
    raise ValueError(f"Unknown repair policy {repair!r}; expected one of "
                     f"{records.REPAIR_POLICIES}")
  root = release_root(path)
  parsed = records.Parsed()
  for subject in _folders(root):
    for child in _folders(subject):
      if _SESSION.fullmatch(child.name):
        for emotion in _folders(child):
          _emotion_folder(root, subject.name, emotion, parsed)
      else:
        _emotion_folder(root, subject.name, child, parsed)
  unclear = [s.sample_id for s in parsed.samples
             if s.sample_id.lower().endswith("end") or "nsg" in s.sample_id.rsplit("/", 1)[1]]
  if unclear:
    log.info("%s: %d take(s) named '*end' or '*nsg*' kept as samples (meaning unverified): %s",
             DATASET, len(unclear), ", ".join(unclear[:10]))
  return parsed


def _folders(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p for p in folder.iterdir() if p.is_dir())


def _emotion_folder(root: pathlib.Path, subject: str, folder: pathlib.Path,
                    parsed: records.Parsed) -> None:
  relative = folder.relative_to(root).as_posix()
  emotion = folder.name.lower()
  if emotion not in EMOTIONS:
    parsed.skipped.append(records.Skip(
        DATASET, relative, f"{RELEASE}/{relative}",
        f"folder {folder.name!r} is neither an emotion ({', '.join(EMOTIONS)}) nor a session"))
    return
  for take in _folders(folder):
    clip = take.relative_to(root).as_posix()
    parsed.samples.append(records.Sample(
        dataset=DATASET, sample_id=clip, subject=subject, clip=clip, emotion=emotion,
        three_class=records.three_class(DATASET, emotion), fps=FPS,
        source=f"{RELEASE}/{clip}"))
