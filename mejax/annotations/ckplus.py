"""CK+ (Extended Cohn-Kanade): labels from the per-sequence `Emotion/` and `FACS/` text files.

Layout (DATASETS.md §6), under the folder `path` given to `parse`:
  cohn-kanade-images/S005/001/S005_001_00000001.png ... S005_001_00000011.png
  Emotion/S005/001/S005_001_00000011_emotion.txt   # one float, "   3.0000000e+00"
  FACS/S005/001/S005_001_00000011_facs.txt         # optional; lines "AU intensity"
A sequence is a sample only when its emotion file exists: 327 of the 593 sequences have one.
Emotion folders without a file (e.g. S010/001) are normal in the release, as are image sequences
without an Emotion folder: both are unlabelled sequences, not samples; their number is logged.

Each sequence runs neutral -> peak: onset = the first frame (neutral), apex = offset = the last
frame (peak, the frame the emotion file is named after). Emotion codes 0-7 are neutral, anger,
contempt, disgust, fear, happy (stored as "happiness"), sadness, surprise; read with
`int(float(text))`. An emotion file that does not hold such a code is kept out as a Skip naming
the file. AUs are the FACS file's AU numbers joined by '+' in file order ("1+2+5"; intensities,
0 meaning "not given", are not kept).

three_class follows `records.three_class` (the MEGC rule: anger, contempt, disgust, fear,
sadness -> negative). PROTOCOLS.md's macro label map (anger, disgust, sadness -> negative;
contempt and fear dropped) is applied at load time by the experiment's label map, which reads
the fine emotion. fps 30 is [UNVERIFIED] (commonly reported, not in the ReadMe we read).
"""

from __future__ import annotations

import logging
import pathlib
import re

from mejax.annotations import records

log = logging.getLogger(__name__)

DATASET = "ckplus"
FPS = 30.0  # UNVERIFIED
IMAGES, EMOTION, FACS = "cohn-kanade-images", "Emotion", "FACS"
EMOTIONS = ("neutral", "anger", "contempt", "disgust", "fear", "happiness", "sadness",
            "surprise")


def parse(path: str | pathlib.Path, repair: str = "skip") -> records.Parsed:
  """Samples of the CK+ folder `path` (holding `cohn-kanade-images/` and `Emotion/`)."""
  if repair not in records.REPAIR_POLICIES:
    raise ValueError(f"Unknown repair policy {repair!r}; expected one of "
                     f"{records.REPAIR_POLICIES}")
  root = pathlib.Path(path)
  missing = [name for name in (IMAGES, EMOTION) if not (root / name).is_dir()]
  if missing:
    found = (sorted(p.name for p in root.iterdir()) if root.is_dir() else
             "it is a file, not a folder" if root.exists() else "it does not exist")
    raise FileNotFoundError(
        f"{DATASET}: {root} has no {' and no '.join(f'{m}/' for m in missing)} folder; expected "
        f"the CK+ release unzipped there: {IMAGES}/S005/001/S005_001_00000001.png, "
        f"{EMOTION}/S005/001/S005_001_00000011_emotion.txt (FACS/ optional). Found: {found}")
  parsed = records.Parsed()
  empty = 0
  for folder in _sequences(root / EMOTION):
    files = sorted(folder.glob("*_emotion.txt"))
    if not files:
      empty += 1
      continue
    subject, sequence = folder.parent.name, folder.name
    sample_id = f"{subject}/{sequence}"
    relative = files[0].relative_to(root).as_posix()
    if len(files) > 1:
      parsed.skipped.append(records.Skip(
          DATASET, sample_id, relative,
          f"{len(files)} emotion files ({', '.join(f.name for f in files)}); expected one"))
      continue
    emotion, problem = _emotion(files[0])
    if problem is None:
      frames, problem = _frames(root / IMAGES / subject / sequence, subject, sequence)
      if problem:
        relative = f"{IMAGES}/{subject}/{sequence}"
    if problem is None:
      aus, problem = _action_units(root / FACS / subject / sequence)
      if problem:
        relative = problem[0]
        problem = problem[1]
    if problem:
      parsed.skipped.append(records.Skip(DATASET, sample_id, relative, problem))
      continue
    parsed.samples.append(records.Sample(
        dataset=DATASET, sample_id=sample_id, subject=subject, clip=f"{subject}/{sequence}",
        emotion=emotion, three_class=records.three_class(DATASET, emotion), action_units=aus,
        fps=FPS, onset=frames[0], apex=frames[-1], offset=frames[-1], source=relative))
  labelled = {s.sample_id for s in parsed.samples} | {s.sample_id for s in parsed.skipped}
  unlabelled = sum(1 for f in _sequences(root / IMAGES)
                   if f"{f.parent.name}/{f.name}" not in labelled)
  log.info("%s: %d labelled sequences (%d kept out), %d image sequences without an emotion file "
           "(%d of them with an empty Emotion folder): not samples", DATASET, len(labelled),
           len(parsed.skipped), unlabelled, empty)
  return parsed


def _sequences(folder: pathlib.Path) -> list[pathlib.Path]:
  """Sequence folders `<folder>/Sxxx/yyy`, sorted."""
  return sorted(sequence for subject in folder.iterdir() if subject.is_dir()
                for sequence in subject.iterdir() if sequence.is_dir())


def _emotion(path: pathlib.Path) -> tuple[str, str | None]:
  text = path.read_text(errors="replace").strip()
  try:
    value = float(text)
  except ValueError:
    return "", f"emotion file holds {text[:40]!r}; expected one emotion code 0-7"
  if not value.is_integer() or not 0 <= value < len(EMOTIONS):
    return "", f"emotion file holds {text[:40]!r}; expected one emotion code 0-7"
  return EMOTIONS[int(value)], None


_FRAME = re.compile(r"(?P<n>\d+)\.png", re.IGNORECASE)


def _frames(folder: pathlib.Path, subject: str, sequence: str) -> tuple[list[int], str | None]:
  """Sorted frame numbers of a sequence's images, or the problem."""
  if not folder.is_dir():
    return [], f"no image folder {IMAGES}/{subject}/{sequence}"
  regex = re.compile(re.escape(f"{subject}_{sequence}_") + _FRAME.pattern, re.IGNORECASE)
  numbers = sorted(int(m.group("n")) for p in folder.iterdir()
                   if (m := regex.fullmatch(p.name)))
  if not numbers:
    return [], f"no frames {subject}_{sequence}_<N>.png in {IMAGES}/{subject}/{sequence}"
  return numbers, None


def _action_units(folder: pathlib.Path) -> tuple[str, tuple[str, str] | None]:
  """'1+2+5' from the sequence's FACS file ("" when there is none), or (file, problem)."""
  if not folder.is_dir():
    return "", None
  files = sorted(folder.glob("*_facs.txt"))
  if not files:
    return "", None
  relative = f"{FACS}/{folder.parent.name}/{folder.name}/{files[0].name}"
  aus = []
  for line in files[0].read_text(errors="replace").splitlines():
    fields = line.split()
    if not fields:
      continue
    try:
      values = [float(f) for f in fields]
    except ValueError:
      return "", (relative, f"FACS line {line.strip()[:40]!r}; expected 'AU intensity' numbers")
    if not values[0].is_integer() or values[0] <= 0:
      return "", (relative, f"FACS line {line.strip()[:40]!r}; expected an AU number first")
    aus.append(str(int(values[0])))
  return "+".join(aus), None
