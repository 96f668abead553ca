"""Dataset-level generation of synthetic_me clips in the schema of `mejax.data.schema`.

A `SyntheticConfig` describes a corpus: subjects (one `Identity` each), clips per subject, the
"sources" (cameras with their frame rates; a subject belongs to one source, like subjects of the
real corpora belong to one dataset), micro or macro motion, image size and difficulty. Its
stand-in fields (`dataset_name`, `subject_names`, `subject_clips`, `emotion_counts`, ...; see
`mejax.synthetic.corpora`) shape a corpus like one licensed dataset; their defaults leave the
synthetic_me corpora exactly as they were.

Every clip is planned from its own random stream derived from (seed, subject, clip), so a clip is
the same whatever other subjects or clips are generated, and nothing about a clip's class
influences its identity, frame rate, length, onset/apex position, brightness or nuisance. (A
stand-in with exact `emotion_counts` deals its words out over the whole corpus, so there a
clip's word depends on the corpus; its timing and nuisance still do not.)

Public API:
  SyntheticConfig, PRESETS ('micro', 'macro', 'megc_sized', 'micro_tiny'), CLASS_NAMES
  EXPRESSION_TYPES (what the synthetic_me presets draw), STAND_IN_EXPRESSION_TYPES (further words
  of the licensed datasets), expression_types_of(word) -> the AU combinations of a stored word
  plan_dataset(config) -> list[ClipPlan]                  (cheap: no rendering)
  render_plan(plan, config, frame_indices=None) -> uint8 (T, H, W, C)
  sample_from_plan(plan, config) -> dict                  (one schema record)
  generate_samples(config) -> Iterator[dict]              (all records, in subject/clip order)
  class_index(sample_or_plan) -> int                      (index into CLASS_NAMES)
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Iterator, Sequence

import numpy as np

from mejax.annotations import records
from mejax.data import schema
from mejax.synthetic import faces
from mejax.synthetic import render
from mejax.synthetic.motion import Nuisance

DATASET_NAME = "synthetic_me"
CLASS_NAMES = ("negative", "positive", "surprise")


@dataclasses.dataclass(frozen=True)
class ExpressionType:
  aus: tuple[int, ...]  # () for a neutral take (no expression)
  label: str            # one of CLASS_NAMES; "" for words without a MEGC class (others, tense)
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
# Words of the licensed datasets that EXPRESSION_TYPES lacks (only the stand-ins draw them, so the
# synthetic_me presets keep their draws). Fear follows objective class VI (1+2+4). "others" are
# real facial movements that code no emotion (class VII): lid tightening, chin raising, parted
# lips. CASME's "tense" is coded on brow lowering (AU4, often with 14). "neutral" (MUG's neutral
# takes) moves nothing.
STAND_IN_EXPRESSION_TYPES = (
    ExpressionType((1, 2, 4), "negative", "fear", 6),
    ExpressionType((1, 2, 4, 5), "negative", "fear", 6),
    ExpressionType((7,), "", "others", 7),
    ExpressionType((17,), "", "others", 7),
    ExpressionType((25,), "", "others", 7),
    ExpressionType((7, 17), "", "others", 7),
    ExpressionType((4,), "", "tense", 3),
    ExpressionType((4, 14), "", "tense", 7),
    ExpressionType((), "", "neutral", 0),
)
_LABEL_OF_EMOTION = {t.emotion: t.label for t in EXPRESSION_TYPES}
# Stored words that name the same movements as another word (SAMM writes "other").
_WORD_ALIASES = {"other": "others"}


def expression_types_of(word: str) -> tuple[ExpressionType, ...]:
  """The AU combinations a clip stored with emotion `word` is rendered with: the types of that
  emotion, or for a 3-class word (SMIC's folders, CAS(ME)^2's estimated emotions) every type of
  EXPRESSION_TYPES with that label."""
  word = _WORD_ALIASES.get(word, word)
  if word in CLASS_NAMES:
    return tuple(t for t in EXPRESSION_TYPES if t.label == word)
  types = tuple(t for t in EXPRESSION_TYPES + STAND_IN_EXPRESSION_TYPES if t.emotion == word)
  if not types:
    known = sorted({t.emotion for t in EXPRESSION_TYPES + STAND_IN_EXPRESSION_TYPES}
                   | set(CLASS_NAMES) | set(_WORD_ALIASES))
    raise ValueError(f"No expression renders the emotion {word!r}; known words: {known}")
  return types


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
    # The macro motion stored neutral -> apex -> neutral, like MUG's takes (which start and end
    # neutral) rather than CK+'s onset -> peak sequences.
    "macro_released": MotionKind(amplitude_px=(4.0, 8.0), duration_s=(2.0, 4.0),
                                 apex_fraction=(0.35, 0.5), lead_in_s=(0.1, 0.3),
                                 tail_s=(0.1, 0.3), posed=False),
}

# What the records annotate of a clip's timing, as the real builders write it:
#   annotated      onset/apex/offset as rendered (CASME, CASME II, CAS(ME)^2, SAMM, synthetic_me);
#   onset_to_peak  onset = the first frame, apex = offset = the last (CK+, Oulu-CASIA);
#   unannotated    onset/offset = the first/last frame, apex -1 (SMIC's cut clips, MUG).
TIMINGS = ("annotated", "onset_to_peak", "unannotated")


# CAS(ME)^2 names a clip after the video that elicited it (`anger1_3`); a stand-in's negative
# clips come from the disgust/anger videos and its positive ones from the funny videos.
_CASME_SQ_VIDEOS = {
    "negative": ("disgust1", "disgust2", "anger1", "anger2"),
    "positive": ("happy1", "happy2", "happy3", "happy4", "happy5"),
}
_CASME_SQ_ANY_VIDEO = _CASME_SQ_VIDEOS["negative"] + _CASME_SQ_VIDEOS["positive"]
_SMIC_CODES = {"negative": "ne", "positive": "po", "surprise": "sur"}


def _casme_sq_id(subject: str, clip: int, word: str, same_word_before: int,
                 first_k: int = 1) -> str:
  videos = _CASME_SQ_VIDEOS.get(word, _CASME_SQ_ANY_VIDEO)
  return f"{subject}/{videos[same_word_before % len(videos)]}_{clip + first_k}"


def _smic_id(subject: str, clip: int, word: str, same_word_before: int,
             camera: str = "HS") -> str:
  # mejax.annotations.smic.sample_id: VIS and NIR ids start with the camera (the three cameras
  # filmed the same clips under the same names), HS ids do not.
  del clip
  prefix = "" if camera == "HS" else f"{camera}/"
  return f"{prefix}{subject}/{subject}_{_SMIC_CODES[word]}_{same_word_before + 1:02d}"


def _oulu_casia_id(subject: str, clip: int, word: str, same_word_before: int) -> str:
  del clip
  take = f"_{same_word_before + 1}" if same_word_before else ""
  return f"{subject}/{word.capitalize()}{take}"


# Sample ids in each real dataset's style: (subject, clip index, word, earlier clips of the
# subject with that word) -> an id unique within the corpus.
SAMPLE_NAMING = {
    "synthetic": lambda subject, clip, word, n: f"{subject}_{clip + 1:02d}",
    "casme": lambda subject, clip, word, n: f"{subject}/EP{clip // 3 + 1:02d}_{clip % 3 + 1}",
    "casme2": lambda subject, clip, word, n: f"{subject}/EP{clip // 3 + 1:02d}_{clip % 3 + 1:02d}",
    "casme_sq": _casme_sq_id,
    # Macro clips count from 21 (micro ones stay below 12), so ids of the two never meet.
    "casme_sq_macro": functools.partial(_casme_sq_id, first_k=21),
    "smic": _smic_id,
    "smic_vis": functools.partial(_smic_id, camera="VIS"),
    "smic_nir": functools.partial(_smic_id, camera="NIR"),
    "samm": lambda subject, clip, word, n: f"{subject}/{subject}_{clip % 7 + 1}_{clip // 7 + 1}",
    "ckplus": lambda subject, clip, word, n: f"{subject}/{clip + 1:03d}",
    "mug": lambda subject, clip, word, n: f"{subject}/{word}/take{n:03d}",
    "oulu_casia": _oulu_casia_id,
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

  Stand-in fields (a corpus shaped like a licensed dataset; see mejax.synthetic.corpora):
  dataset_name: the records' `dataset` (the real builder's name, e.g. "casme2").
  subject_names: subjects as the real dataset names them ("sub01", "s1", "006"); n_subjects of
    them. None: S01, S02, ... A named subject's identity is drawn from its name, so two corpora
    with the same identity_seed (e.g. CAS(ME)^2's micro and macro stand-ins) share the person.
  identity_seed: the seed of the identities (None: seed).
  subject_clips: exact clips of each subject (overrides clips_per_subject / total_clips).
  emotion_counts: ((word, count), ...): the stored emotion words and their exact corpus counts,
    dealt out over subject_clips; replaces class_probs.
  subject_emotions: every subject performs each of these words once (posed corpora, e.g.
    Oulu-CASIA); replaces class_probs and the clip counts.
  naming: sample-id style, a key of SAMPLE_NAMING ("casme2" -> "sub01/EP01_01").
  timing: what the records annotate, one of TIMINGS.
  stores_aus / stores_objective_class: False writes "" / 0 like builders whose dataset codes
    no AUs (SMIC, MUG, Oulu-CASIA) or ships no objective classes.
  identity_ranges: the population the subjects are drawn from.
  camera: exposure, white balance, contrast and blur of the recordings.
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
  dataset_name: str = DATASET_NAME
  subject_names: tuple[str, ...] | None = None
  identity_seed: int | None = None
  subject_clips: tuple[int, ...] | None = None
  emotion_counts: tuple[tuple[str, int], ...] | None = None
  subject_emotions: tuple[str, ...] | None = None
  naming: str = "synthetic"
  timing: str = "annotated"
  stores_aus: bool = True
  stores_objective_class: bool = True
  identity_ranges: faces.IdentityRanges = faces.IdentityRanges()
  camera: render.Camera = render.Camera()

  def __post_init__(self):
    if self.kind not in MOTION_KINDS:
      raise ValueError(f"kind must be one of {sorted(MOTION_KINDS)}, got {self.kind!r}")
    if not np.isclose(sum(self.class_probs), 1.0):
      raise ValueError("class_probs must sum to 1")
    if self.difficulty <= 0:
      raise ValueError("difficulty must be positive")
    if self.naming not in SAMPLE_NAMING:
      raise ValueError(f"naming must be one of {sorted(SAMPLE_NAMING)}, got {self.naming!r}")
    if self.timing not in TIMINGS:
      raise ValueError(f"timing must be one of {TIMINGS}, got {self.timing!r}")
    for key in ("subject_names", "subject_clips"):
      value = getattr(self, key)
      if value is not None and len(value) != self.n_subjects:
        raise ValueError(f"{key} must have one entry per subject (n_subjects "
                         f"{self.n_subjects}), got {len(value)}")
    if self.subject_names is not None and len(set(self.subject_names)) != self.n_subjects:
      raise ValueError(f"subject_names must be distinct, got {self.subject_names}")
    if self.emotion_counts is not None and self.subject_emotions is not None:
      raise ValueError("give emotion_counts or subject_emotions, not both")
    if self.subject_emotions is not None and self.subject_clips is not None and any(
        n != len(self.subject_emotions) for n in self.subject_clips):
      raise ValueError(f"subject_emotions gives every subject {len(self.subject_emotions)} "
                       f"clips; subject_clips says otherwise: {self.subject_clips}")
    if self.emotion_counts is not None:
      if self.subject_clips is None:
        raise ValueError("emotion_counts needs subject_clips (the clips they are dealt to)")
      total = sum(n for _, n in self.emotion_counts)
      if total != sum(self.subject_clips):
        raise ValueError(f"emotion_counts add up to {total} clips but subject_clips to "
                         f"{sum(self.subject_clips)}")
    for word in self.stored_words():
      expression_types_of(word)  # raises for a word no expression renders

  def stored_words(self) -> tuple[str, ...]:
    """The emotion words of a stand-in's records (() for a corpus drawn from class_probs)."""
    if self.emotion_counts is not None:
      return tuple(word for word, _ in self.emotion_counts)
    return tuple(self.subject_emotions or ())

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
  emotion: str = ""  # the stored emotion word ("" = expression_type.emotion)


# Independent random streams per (seed, stream, subject[, clip]).
_IDENTITY_STREAM, _SUBJECT_STREAM, _PLAN_STREAM, _RENDER_STREAM, _CLASS_STREAM = range(5)
_GOLDEN_FRACTION = (np.sqrt(5.0) - 1.0) / 2.0


_WORD_STREAM = 5  # stand-ins: dealing the emotion words out


def subject_name(subject_index: int, config: SyntheticConfig | None = None) -> str:
  if config is not None and config.subject_names is not None:
    return config.subject_names[subject_index]
  return f"S{subject_index + 1:02d}"


def subject_identity(config: SyntheticConfig, subject_index: int) -> faces.Identity:
  seed = config.seed if config.identity_seed is None else config.identity_seed
  key = subject_index
  if config.subject_names is not None:
    key = zlib.crc32(config.subject_names[subject_index].encode())
  return faces.sample_identity(np.random.default_rng([seed, _IDENTITY_STREAM, key]),
                               config.identity_ranges)


def plan_subject(config: SyntheticConfig, subject_index: int) -> list[ClipPlan]:
  identity = subject_identity(config, subject_index)
  fps = float(config.fps_sources[subject_index % len(config.fps_sources)])
  words = _corpus_words(config)
  if words is not None:
    subject_words = words[subject_index]
    return [_plan_clip(config, subject_index, clip, identity, fps, word,
                       subject_words[:clip].count(word))
            for clip, word in enumerate(subject_words)]
  low, high = config.clips_per_subject
  n_clips = int(np.random.default_rng([config.seed, _SUBJECT_STREAM, subject_index])
                .integers(low, high + 1))
  if config.total_clips is not None:
    base, extra = divmod(config.total_clips, config.n_subjects)
    n_clips = base + (subject_index < extra)
  if config.subject_clips is not None:
    n_clips = config.subject_clips[subject_index]
  return [_plan_clip(config, subject_index, clip, identity, fps) for clip in range(n_clips)]


@functools.lru_cache(maxsize=64)
def _corpus_words(config: SyntheticConfig) -> tuple[tuple[str, ...], ...] | None:
  """The stored emotion word of each clip of each subject (None: classes from class_probs).

  emotion_counts: the corpus's words, shuffled once and dealt out in subject/clip order, so the
  corpus balance is exact and a subject's words are a random draw from it. subject_emotions:
  each subject performs every word once, in its own random order.
  """
  if config.subject_emotions is not None:
    return tuple(
        tuple(str(w) for w in np.random.default_rng([config.seed, _WORD_STREAM, s])
              .permutation(np.array(config.subject_emotions)))
        for s in range(config.n_subjects))
  if config.emotion_counts is None:
    return None
  deck = np.array([word for word, count in config.emotion_counts for _ in range(count)])
  deck = np.random.default_rng([config.seed, _WORD_STREAM]).permutation(deck)
  ends = np.cumsum(config.subject_clips)
  return tuple(tuple(str(w) for w in deck[end - n:end])
               for end, n in zip(ends, config.subject_clips))


def plan_dataset(config: SyntheticConfig) -> list[ClipPlan]:
  return [plan for s in range(config.n_subjects) for plan in plan_subject(config, s)]


def _plan_clip(config: SyntheticConfig, subject_index: int, clip_index: int,
               identity: faces.Identity, fps: float, word: str | None = None,
               same_word_before: int = 0) -> ClipPlan:
  """One clip; `word` (stand-ins) is its stored emotion, `same_word_before` how many earlier
  clips of the subject have it (sample ids count takes per word)."""
  rng = np.random.default_rng([config.seed, _PLAN_STREAM, subject_index, clip_index])
  kind = config.motion
  if word is None:
    label = CLASS_NAMES[_class_draw(config, subject_index, clip_index)]
    candidates = [t for t in EXPRESSION_TYPES if t.label == label]
    expression_type = candidates[rng.integers(len(candidates))]
    word = expression_type.emotion
  else:
    # One uniform draw whatever the word's number of types, so the clip's timing below does
    # not depend on its word.
    candidates = expression_types_of(word)
    expression_type = candidates[int(rng.uniform() * len(candidates))]

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
  subject = subject_name(subject_index, config)
  return ClipPlan(
      sample_id=SAMPLE_NAMING[config.naming](subject, clip_index, word, same_word_before),
      subject=subject, subject_index=subject_index, clip_index=clip_index,
      identity=identity, expression_type=expression_type, expression=expression,
      n_frames=last_frame + 1, fps=fps,
      first_source_frame=int(rng.integers(1, 5000)),
      render_seed=(config.seed, _RENDER_STREAM, subject_index, clip_index), emotion=word)


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
  expression = plan.expression if plan.expression.aus else None  # a neutral take moves nothing
  clip = render.render_clip(
      plan.identity, expression, plan.n_frames, plan.fps, size=config.size,
      grey=config.grey, nuisance=config.clip_nuisance(),
      rng=np.random.default_rng(list(plan.render_seed)), frame_indices=frame_indices,
      camera=config.camera)
  return clip.frames


# The annotation of a stand-in's records: says where they come from, since their `dataset` is
# the licensed dataset's name (`mejax.data.stand_ins.is_stand_in` recognises it).
STAND_IN_ANNOTATION = "rendered by synthetic_me as a stand-in of {dataset}"


def sample_from_plan(plan: ClipPlan, config: SyntheticConfig) -> dict:
  """One record with exactly the keys of `mejax.data.schema`."""
  expression = plan.expression
  kind = plan.expression_type
  emotion = plan.emotion or kind.emotion
  onset, apex, offset = expression.onset, expression.apex, expression.offset
  if config.timing == "onset_to_peak":
    onset, apex, offset = 0, plan.n_frames - 1, plan.n_frames - 1
  elif config.timing == "unannotated":
    onset, apex, offset = 0, -1, plan.n_frames - 1
  first = plan.first_source_frame
  stand_in = config.dataset_name != DATASET_NAME
  return {
      schema.SAMPLE_ID: plan.sample_id,
      schema.DATASET: config.dataset_name,
      schema.SUBJECT: plan.subject,
      schema.EMOTION: emotion,
      # A stand-in's 3-class label follows its real dataset's rule (CASME II: fear and sadness
      # have none); synthetic_me's is its expression's class.
      schema.THREE_CLASS: (records.three_class(config.dataset_name, emotion) if stand_in
                           else kind.label),
      schema.ACTION_UNITS: kind.au_string if config.stores_aus else "",
      schema.OBJECTIVE_CLASS: kind.objective_class if config.stores_objective_class else 0,
      schema.FPS: plan.fps,
      schema.ONSET: onset,
      schema.APEX: apex,
      schema.OFFSET: offset,
      schema.SOURCE_FRAMES: np.arange(first, first + plan.n_frames, dtype=np.int32),
      schema.ONSET_FRAME: first + onset,
      schema.APEX_FRAME: first + apex if apex >= 0 else -1,
      schema.OFFSET_FRAME: first + offset,
      schema.ANNOTATION: (STAND_IN_ANNOTATION.format(dataset=config.dataset_name) if stand_in
                          else "rendered"),
      schema.FRAMES: render_plan(plan, config),
  }


def generate_samples(config: SyntheticConfig) -> Iterator[dict]:
  """All records of the corpus, subject by subject."""
  for plan in plan_dataset(config):
    yield sample_from_plan(plan, config)


def class_index(item: dict | ClipPlan) -> int:
  """3-class index (CLASS_NAMES) of a synthetic_me record or plan, as the MEGC2019 label map
  assigns it. (Stand-in records: their `three_class`, which follows their dataset's rule.)"""
  if isinstance(item, ClipPlan):
    label = item.expression_type.label
  else:
    emotion = item[schema.EMOTION]
    emotion = emotion.decode() if isinstance(emotion, bytes) else emotion
    label = _LABEL_OF_EMOTION.get(emotion, "")
  if label not in CLASS_NAMES:
    raise ValueError(f"{item.emotion if isinstance(item, ClipPlan) else emotion!r} has no "
                     f"3-class label; expected an emotion of {sorted(_LABEL_OF_EMOTION)}")
  return CLASS_NAMES.index(label)
