"""Dataset-level generation of synthetic_me clips in the schema of `mejax.data.schema`.

A `SyntheticConfig` describes a corpus: subjects (one `Identity` each), clips per subject, the
"sources" (cameras with their frame rates; a subject belongs to one source, like subjects of the
real corpora belong to one dataset), micro or macro motion, image size and difficulty.

Every clip is planned from its own random stream derived from (seed, subject, clip), so a clip is
the same whatever other subjects or clips are generated, and nothing about a clip's class
influences its identity, frame rate, length, onset/apex position, brightness or nuisance.

Public API:
  SyntheticConfig, PRESETS ('micro', 'macro', 'micro_tiny'), EXPRESSION_TYPES, CLASS_NAMES
  plan_dataset(config) -> list[ClipPlan]                  (cheap: no rendering)
  render_plan(plan, config, frame_indices=None) -> uint8 (T, H, W, C)
  sample_from_plan(plan, config) -> dict                  (one schema record)
  generate_samples(config) -> Iterator[dict]              (all records, in subject/clip order)
  class_index(sample_or_plan) -> int                      (index into CLASS_NAMES)
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import numpy as np

from mejax.data import schema
from mejax.synthetic import faces
from mejax.synthetic import render
from mejax.synthetic.motion import Nuisance

DATASET_NAME = "synthetic_me"
CLASS_NAMES = ("negative", "positive", "surprise")


@dataclasses.dataclass(frozen=True)
class ExpressionType:
  aus: tuple[int, ...]
  label: str            # one of CLASS_NAMES
  emotion: str          # fine emotion recorded in the metadata
  objective_class: int  # Davison et al. 2018: I happiness .. VII others

  @property
  def au_string(self) -> str:
    return "+".join(str(a) for a in self.aus)


# The AU combinations of each class. Emotions follow the usual coding of the real corpora;
# objective classes follow the AU rules of Davison et al. 2018 (so, as in CASME II, the emotion
# and the objective class of a clip need not agree, e.g. 15+17 coded as repression is class V).
EXPRESSION_TYPES = (
    ExpressionType((12,), "positive", "happiness", 1),
    ExpressionType((6, 12), "positive", "happiness", 1),
    ExpressionType((1, 2), "surprise", "surprise", 2),
    ExpressionType((1, 2, 5), "surprise", "surprise", 2),
    ExpressionType((1, 2, 26), "surprise", "surprise", 2),
    ExpressionType((4,), "negative", "anger", 3),
    ExpressionType((4, 7), "negative", "anger", 3),
    ExpressionType((9,), "negative", "disgust", 4),
    ExpressionType((10,), "negative", "disgust", 4),
    ExpressionType((4, 9), "negative", "disgust", 4),
    ExpressionType((14,), "negative", "contempt", 7),
    ExpressionType((15,), "negative", "sadness", 5),
    ExpressionType((15, 17), "negative", "repression", 5),
)
_LABEL_OF_EMOTION = {t.emotion: t.label for t in EXPRESSION_TYPES}


@dataclasses.dataclass(frozen=True)
class MotionKind:
  """Timing and amplitude of the expressions of one kind (spatial values at 128 px)."""
  amplitude_px: tuple[float, float]   # peak displacement at apex, uniform in this range
  duration_s: tuple[float, float]     # onset -> offset of the expression
  apex_fraction: tuple[float, float]  # (apex - onset) / (offset - onset)
  lead_in_s: tuple[float, float]      # neutral frames stored before onset
  tail_s: tuple[float, float]         # frames stored after the offset (micro) / the apex (macro)
  posed: bool                         # True: CK+-like onset->peak clips, apex held to the end


MOTION_KINDS = {
    # Spontaneous micro-expressions: <= 0.5 s, sub-pixel to 2 px, full onset->apex->offset,
    # stored like CASME II's onset..offset selections with a short neutral lead-in and tail.
    "micro": MotionKind(amplitude_px=(0.5, 2.0), duration_s=(0.2, 0.5), apex_fraction=(0.3, 0.6),
                        lead_in_s=(0.02, 0.08), tail_s=(0.02, 0.08), posed=False),
    # Posed macro-expressions lasting 2-4 s; like CK+ only neutral -> peak is stored (the rise takes
    # 35-50 % of the expression) and the apex is held for a few frames; offset = last frame.
    "macro": MotionKind(amplitude_px=(4.0, 8.0), duration_s=(2.0, 4.0), apex_fraction=(0.35, 0.5),
                        lead_in_s=(0.04, 0.12), tail_s=(0.0, 0.1), posed=True),
}


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """One synthetic corpus.

  difficulty: d divides the expression amplitude by d and multiplies the dynamic nuisance
    (blinks, head drift and roll, illumination change, noise) by d. At 1.0 the ranges are those of
    SYNTHETIC.md (micro: 0.5-2 px peaks, head drift up to ~2 px); the micro presets use the
    calibrated CALIBRATED_MICRO_DIFFICULTY.
  amplitude_px: explicit (low, high) peak displacement at 128 px before the difficulty scaling;
    None uses the kind's range.
  """
  kind: str = "micro"
  n_subjects: int = 24
  clips_per_subject: tuple[int, int] = (10, 14)  # inclusive range
  # Exact corpus size instead of the range: subjects get total // n or one more (the first ones).
  total_clips: int | None = None
  fps_sources: tuple[float, ...] = (100.0, 60.0, 30.0)
  size: int = 128
  grey: bool = False
  difficulty: float = 1.0
  seed: int = 0
  amplitude_px: tuple[float, float] | None = None
  class_probs: tuple[float, float, float] = (0.55, 0.25, 0.20)  # in CLASS_NAMES order
  nuisance: Nuisance = Nuisance()

  def __post_init__(self):
    if self.kind not in MOTION_KINDS:
      raise ValueError(f"kind must be one of {sorted(MOTION_KINDS)}, got {self.kind!r}")
    if not np.isclose(sum(self.class_probs), 1.0):
      raise ValueError("class_probs must sum to 1")
    if self.difficulty <= 0:
      raise ValueError("difficulty must be positive")

  @property
  def motion(self) -> MotionKind:
    return MOTION_KINDS[self.kind]

  @property
  def channels(self) -> int:
    return 1 if self.grey else 3

  def amplitude_range(self) -> tuple[float, float]:
    low, high = self.amplitude_px or self.motion.amplitude_px
    return low / self.difficulty, high / self.difficulty

  def clip_nuisance(self) -> Nuisance:
    return self.nuisance.scaled(self.difficulty)


# Calibrated with `python -m mejax.synthetic.calibration` and the smoke preset of
# configs/convlstm.py (docs/benchmarks.md): at 0.5 (1-4 px peaks, nuisance halved) a logistic
# regression on single apex frames stays near chance (LOSO UAR 0.43) while the smoke ConvLSTM
# learns the motion. At 1.0 head drift swamps the expression in 32 x 32 onset-relative clips.
CALIBRATED_MICRO_DIFFICULTY = 0.5

PRESETS = {
    "micro": SyntheticConfig(difficulty=CALIBRATED_MICRO_DIFFICULTY),
    "macro": SyntheticConfig(kind="macro", n_subjects=40, clips_per_subject=(5, 9),
                             fps_sources=(30.0, 25.0)),
    # The size of the MEGC2019 composite (442 clips, 68 subjects) for sweep benchmarks: 34
    # subjects with 7 clips and 34 with 6, at the micro difficulty.
    "megc_sized": SyntheticConfig(n_subjects=68, total_clips=442,
                                  difficulty=CALIBRATED_MICRO_DIFFICULTY),
    # Test-only: few small clips with the same motion (relative to the face) as `micro`.
    "micro_tiny": SyntheticConfig(n_subjects=6, clips_per_subject=(4, 6), size=64,
                                  difficulty=CALIBRATED_MICRO_DIFFICULTY),
}


@dataclasses.dataclass(frozen=True)
class ClipPlan:
  """Everything needed to render one clip and write its record."""
  sample_id: str
  subject: str
  subject_index: int
  clip_index: int
  identity: faces.Identity
  expression_type: ExpressionType
  expression: render.Expression
  n_frames: int
  fps: float
  first_source_frame: int
  render_seed: tuple[int, ...]


# Independent random streams per (seed, stream, subject[, clip]).
_IDENTITY_STREAM, _SUBJECT_STREAM, _PLAN_STREAM, _RENDER_STREAM, _CLASS_STREAM = range(5)
_GOLDEN_FRACTION = (np.sqrt(5.0) - 1.0) / 2.0


def subject_name(subject_index: int) -> str:
  return f"S{subject_index + 1:02d}"


def subject_identity(config: SyntheticConfig, subject_index: int) -> faces.Identity:
  return faces.sample_identity(
      np.random.default_rng([config.seed, _IDENTITY_STREAM, subject_index]))


def plan_subject(config: SyntheticConfig, subject_index: int) -> list[ClipPlan]:
  identity = subject_identity(config, subject_index)
  low, high = config.clips_per_subject
  n_clips = int(np.random.default_rng([config.seed, _SUBJECT_STREAM, subject_index])
                .integers(low, high + 1))
  if config.total_clips is not None:
    base, extra = divmod(config.total_clips, config.n_subjects)
    n_clips = base + (subject_index < extra)
  fps = float(config.fps_sources[subject_index % len(config.fps_sources)])
  return [_plan_clip(config, subject_index, clip, identity, fps) for clip in range(n_clips)]


def plan_dataset(config: SyntheticConfig) -> list[ClipPlan]:
  return [plan for s in range(config.n_subjects) for plan in plan_subject(config, s)]


def _plan_clip(config: SyntheticConfig, subject_index: int, clip_index: int,
               identity: faces.Identity, fps: float) -> ClipPlan:
  rng = np.random.default_rng([config.seed, _PLAN_STREAM, subject_index, clip_index])
  kind = config.motion
  label = CLASS_NAMES[_class_draw(config, subject_index, clip_index)]
  candidates = [t for t in EXPRESSION_TYPES if t.label == label]
  expression_type = candidates[rng.integers(len(candidates))]

  # Timing, drawn identically for every class.
  duration = rng.uniform(*kind.duration_s)
  span = max(2, int(np.floor(duration * fps)))  # floor keeps micro durations <= 0.5 s
  rise = int(np.clip(round(rng.uniform(*kind.apex_fraction) * span), 1, span - 1))
  lead_in = max(1, round(rng.uniform(*kind.lead_in_s) * fps))
  tail = max(0 if kind.posed else 1, round(rng.uniform(*kind.tail_s) * fps))
  onset, apex = lead_in, lead_in + rise
  if kind.posed:
    offset = last_frame = apex + tail
  else:
    offset = onset + span
    last_frame = offset + tail
  amplitude = rng.uniform(*config.amplitude_range())
  intensities = tuple(float(w) for w in rng.uniform(0.7, 1.0, size=len(expression_type.aus)))
  expression = render.Expression(
      aus=expression_type.aus, onset=onset, apex=apex, offset=offset,
      amplitude_px=float(amplitude), intensities=intensities, release=not kind.posed)
  return ClipPlan(
      sample_id=f"{subject_name(subject_index)}_{clip_index + 1:02d}",
      subject=subject_name(subject_index), subject_index=subject_index, clip_index=clip_index,
      identity=identity, expression_type=expression_type, expression=expression,
      n_frames=last_frame + 1, fps=fps,
      first_source_frame=int(rng.integers(1, 5000)),
      render_seed=(config.seed, _RENDER_STREAM, subject_index, clip_index))


def _class_draw(config: SyntheticConfig, subject_index: int, clip_index: int) -> int:
  """Class of a clip from a golden-ratio sequence with a random start per subject.

  Like independent draws, a clip's class depends only on (seed, subject, clip) and not on the
  subject's identity or clip count, but every subject's classes follow `class_probs` closely, so
  the corpus balance holds without the +-5 % scatter of independent draws.
  """
  start = np.random.default_rng([config.seed, _CLASS_STREAM, subject_index]).uniform()
  position = (start + clip_index * _GOLDEN_FRACTION) % 1.0
  return int(np.searchsorted(np.cumsum(config.class_probs)[:-1], position, side="right"))


def render_plan(plan: ClipPlan, config: SyntheticConfig,
                frame_indices: Sequence[int] | None = None) -> np.ndarray:
  """uint8 frames (T, H, W, C) of a planned clip (or just `frame_indices` of it)."""
  clip = render.render_clip(
      plan.identity, plan.expression, plan.n_frames, plan.fps, size=config.size,
      grey=config.grey, nuisance=config.clip_nuisance(),
      rng=np.random.default_rng(list(plan.render_seed)), frame_indices=frame_indices)
  return clip.frames


def sample_from_plan(plan: ClipPlan, config: SyntheticConfig) -> dict:
  """One record with exactly the keys of `mejax.data.schema`."""
  expression = plan.expression
  return {
      schema.SAMPLE_ID: plan.sample_id,
      schema.DATASET: DATASET_NAME,
      schema.SUBJECT: plan.subject,
      schema.EMOTION: plan.expression_type.emotion,
      schema.THREE_CLASS: plan.expression_type.label,
      schema.ACTION_UNITS: plan.expression_type.au_string,
      schema.OBJECTIVE_CLASS: plan.expression_type.objective_class,
      schema.FPS: plan.fps,
      schema.ONSET: expression.onset,
      schema.APEX: expression.apex,
      schema.OFFSET: expression.offset,
      schema.SOURCE_FRAMES: np.arange(plan.first_source_frame,
                                      plan.first_source_frame + plan.n_frames, dtype=np.int32),
      schema.ONSET_FRAME: plan.first_source_frame + expression.onset,
      schema.APEX_FRAME: plan.first_source_frame + expression.apex,
      schema.OFFSET_FRAME: plan.first_source_frame + expression.offset,
      schema.ANNOTATION: "rendered",
      schema.FRAMES: render_plan(plan, config),
  }


def generate_samples(config: SyntheticConfig) -> Iterator[dict]:
  """All records of the corpus, subject by subject."""
  for plan in plan_dataset(config):
    yield sample_from_plan(plan, config)


def class_index(item: dict | ClipPlan) -> int:
  """3-class index (CLASS_NAMES) of a record or plan, as the MEGC2019 label map assigns it."""
  if isinstance(item, ClipPlan):
    return CLASS_NAMES.index(item.expression_type.label)
  emotion = item[schema.EMOTION]
  emotion = emotion.decode() if isinstance(emotion, bytes) else emotion
  return CLASS_NAMES.index(_LABEL_OF_EMOTION[emotion])
