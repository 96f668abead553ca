"""Typed records that every annotation parser returns (no TFDS, no images).

A parser reads one dataset's annotation file (or folder tree, where labels are folder names) and
returns `Parsed`: the usable `Sample`s and the rows it had to leave out as `Skip`s, each with the
file, row and reason. Frame numbers in a `Sample` are the dataset's own (absolute) numbers; the
builders turn them into indices of the stored frames.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterable

log = logging.getLogger(__name__)

# What a builder may do with a row whose timing is unusable (apex missing or outside onset..offset).
REPAIR_POLICIES = ("skip", "midpoint")


@dataclasses.dataclass(frozen=True)
class Sample:
  """One clip as the dataset's annotation describes it."""
  dataset: str             # builder name, e.g. "casme2"
  sample_id: str           # unique within the dataset, e.g. "sub01/EP02_01f"
  subject: str             # the subject's folder name as the dataset writes it: "sub01", "s1", "006"
  clip: str                # frame folder, relative to the release root ("sub01/EP02_01f")
  emotion: str             # fine emotion, lower case, as coded ("others", "repression", ...)
  three_class: str = ""    # MEGC 3-class label (negative/positive/surprise); "" where undefined
  action_units: str = ""   # FACS string as coded ("4+L10"); "" when not coded
  objective_class: int = 0  # Davison et al. 2018, 1..7; 0 when not shipped
  fps: float = 0.0
  onset: int = -1          # original frame numbers; -1 = not annotated
  apex: int = -1
  offset: int = -1
  source: str = ""         # "<file>:<row>" (or the folder) the record came from
  repaired: str = ""       # what a repair policy changed; "" when the row is as annotated

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Skip:
  """A sample kept out of the dataset, and why."""
  dataset: str
  sample_id: str
  file: str                # the annotation file (with row) or image/folder at fault
  reason: str

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


@dataclasses.dataclass
class Parsed:
  samples: list[Sample] = dataclasses.field(default_factory=list)
  skipped: list[Skip] = dataclasses.field(default_factory=list)

  def extend(self, other: "Parsed") -> "Parsed":
    self.samples.extend(other.samples)
    self.skipped.extend(other.skipped)
    return self

  def log_skips(self) -> None:
    for skip in self.skipped:
      log.warning("%s: skipped %s (%s): %s", skip.dataset, skip.sample_id, skip.file, skip.reason)


def no_filename(dataset: str, subject_text: str, source: str) -> Skip:
  """The skip of an annotation row without a Filename (notes under a table, a half-filled row)."""
  return Skip(dataset, f"{subject_text or '?'}/?", source,
              "no Filename: the clip folder is unknown")


def check_timing(sample: Sample, repair: str = "skip") -> Sample | Skip:
  """Validates onset <= apex <= offset; repairs (apex = midpoint) only when asked to.

  Samples without any timing (onset and offset -1: labels from folders) pass unchanged; so do
  samples whose dataset has no apex (apex -1 with onset/offset given, e.g. SMIC-E).
  """
  if repair not in REPAIR_POLICIES:
    raise ValueError(f"Unknown repair policy {repair!r}; expected one of {REPAIR_POLICIES}")
  onset, apex, offset = sample.onset, sample.apex, sample.offset
  where = sample.source
  if onset < 0 and offset < 0:
    return sample
  if onset < 0 or offset < 0:
    missing = " and ".join(n for n, v in (("onset", onset), ("offset", offset)) if v < 0)
    return Skip(sample.dataset, sample.sample_id, where,
                f"{missing} not annotated (onset {onset}, apex {apex}, offset {offset})")
  if offset < onset:
    return Skip(sample.dataset, sample.sample_id, where, f"offset {offset} before onset {onset}")
  if apex == -1 and sample.dataset.startswith("smic"):
    return sample  # SMIC never annotates an apex
  problem = None
  if apex < 0:
    problem = "apex not annotated"
  elif not onset <= apex <= offset:
    problem = f"apex {apex} outside onset..offset {onset}..{offset}"
  if problem is None:
    return sample
  if repair == "midpoint":
    midpoint = (onset + offset) // 2
    return dataclasses.replace(sample, apex=midpoint,
                               repaired=f"{problem}; apex set to the midpoint {midpoint}")
  return Skip(sample.dataset, sample.sample_id, where,
              f"{problem} (repair policy 'midpoint' would set apex = (onset + offset) // 2)")


def validate(samples: Iterable[Sample], repair: str = "skip") -> Parsed:
  """check_timing over samples; also rejects duplicate sample ids."""
  out, seen = Parsed(), {}
  for sample in samples:
    if sample.sample_id in seen:
      out.skipped.append(Skip(sample.dataset, sample.sample_id, sample.source,
                              f"duplicate of {seen[sample.sample_id]}"))
      continue
    seen[sample.sample_id] = sample.source
    checked = check_timing(sample, repair)
    (out.skipped if isinstance(checked, Skip) else out.samples).append(checked)
  return out


# MEGC2019 3-class rule (PROTOCOLS.md). CASME II's negative class is disgust + repression only:
# the challenge left its fear and sadness clips out, so they have no 3-class label there.
_NEGATIVE = {"repression", "anger", "contempt", "disgust", "fear", "sadness", "negative"}
_POSITIVE = {"happiness", "positive"}
_SURPRISE = {"surprise"}
_CASME2_NEGATIVE = {"disgust", "repression"}


def three_class(dataset: str, emotion: str) -> str:
  """MEGC 3-class label of a fine emotion ("" when the emotion has none in that dataset)."""
  emotion = emotion.strip().lower()
  negative = _CASME2_NEGATIVE if dataset == "casme2" else _NEGATIVE
  if emotion in negative:
    return "negative"
  if emotion in _POSITIVE:
    return "positive"
  if emotion in _SURPRISE:
    return "surprise"
  return ""
