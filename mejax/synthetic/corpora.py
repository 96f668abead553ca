"""Stand-ins of the licensed datasets: synthetic_me corpora shaped like each real one.

Each stand-in mirrors what its real builder stores (DATASETS.md, and counts taken from the
real annotation sheets): the subjects as the dataset names them and their clip counts, the frame
rate, colour or grey frames, the emotion words with the real class balance, which fields the
dataset annotates (apex, AUs, objective classes) and sample ids in the dataset's style. Records
carry the real builder's name in `dataset`, so label maps, cross-dataset protocols and
per-dataset reports run on them unchanged; their `annotation` says they are rendered.

They differ from one another like corpora do: each has its own identity pool (seed and
population ranges), camera (exposure, white balance, contrast, blur, sensor noise), head motion,
frame rate and frame size (smaller than the real frames, so builds stay fast). Micro stand-ins
keep the calibrated micro motion (CALIBRATED_MICRO_DIFFICULTY), macro ones the macro motion.

Public API:
  STAND_INS: config name ("casme2") -> StandIn (the real shape it mirrors and its config)
  PRESETS: config name -> SyntheticConfig (what the synthetic_me builder builds)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mejax.synthetic import faces
from mejax.synthetic import generate
from mejax.synthetic import render
from mejax.synthetic.motion import Nuisance


@dataclasses.dataclass(frozen=True)
class RealShape:
  """What the licensed dataset's builder stores, as far as a stand-in mirrors it.

  builder: the real builder's name, written in the records' `dataset`.
  subjects / clips: the subjects as the dataset names them and each one's clip count.
  emotions: ((word, count), ...) of the stored emotion words.
  grey: the real frames are grey (the builder repeats them over RGB).
  source: where the numbers come from (sheets counted, DATASETS.md, or UNVERIFIED).
  """
  builder: str
  description: str
  subjects: tuple[str, ...]
  clips: tuple[int, ...]
  fps: float
  emotions: tuple[tuple[str, int], ...]
  grey: bool
  source: str

  @property
  def num_clips(self) -> int:
    return sum(self.clips)


@dataclasses.dataclass(frozen=True)
class StandIn:
  name: str              # the synthetic_me config
  real: RealShape
  config: generate.SyntheticConfig

  @property
  def description(self) -> str:
    c = self.config
    colour = "grey" if c.grey else "RGB"
    return (f"Stand-in of {self.real.description}: {c.n_subjects} subjects, "
            f"{self.real.num_clips} {c.kind.split('_')[0]}-expression clips, "
            f"{c.fps_sources[0]:g} fps, {c.size}x{c.size} {colour}.")


def _spread(total: int, n_subjects: int, seed: int, low: int = 1) -> tuple[int, ...]:
  """Uneven clip counts summing to `total` (at least `low` each) where the real per-subject counts
  are unknown: real corpora have a few prolific subjects and many with few clips."""
  rng = np.random.default_rng(seed)
  weights = rng.gamma(1.5, size=n_subjects)
  extra = rng.multinomial(total - low * n_subjects, weights / weights.sum())
  return tuple(int(low + e) for e in extra)


def _micro(**fields) -> generate.SyntheticConfig:
  return generate.SyntheticConfig(kind="micro", difficulty=generate.CALIBRATED_MICRO_DIFFICULTY,
                                  **fields)


def _shape_config(real: RealShape, **fields) -> dict:
  """The SyntheticConfig fields a stand-in takes from its real shape."""
  return dict(dataset_name=real.builder, n_subjects=len(real.subjects),
              subject_names=real.subjects, subject_clips=real.clips, fps_sources=(real.fps,),
              grey=real.grey, **fields)


# ---- the real shapes ---------------------------------------------------------------------------

# Counted in the 2014 coding sheet (255 rows, 26 subjects).
_CASME2 = RealShape(
    "casme2", "CASME II (casme2/cropped)", tuple(f"sub{i:02d}" for i in range(1, 27)),
    (9, 13, 7, 5, 19, 5, 9, 3, 14, 14, 10, 12, 8, 4, 3, 4, 36, 3, 16, 11, 2, 2, 12, 10, 7, 17),
    200.0, (("others", 99), ("disgust", 63), ("happiness", 32), ("repression", 27),
            ("surprise", 25), ("sadness", 7), ("fear", 2)),
    grey=False, source="CASME2-coding-20140508.xlsx, counted")
# Counted in SAMM_Micro_FACS_Codes_v2.xlsx (159 rows, 29 subjects); SAMM's frames are grey.
_SAMM = RealShape(
    "samm", "SAMM (samm/raw)",
    ("006", "007", "009", "010", "011", "012", "013", "014", "015", "016", "017", "018", "019",
     "020", "021", "022", "023", "024", "025", "026", "028", "030", "031", "032", "033", "034",
     "035", "036", "037"),
    (11, 10, 4, 4, 20, 3, 6, 11, 3, 5, 6, 4, 3, 9, 2, 5, 1, 1, 4, 13, 3, 3, 1, 6, 5, 3, 9, 1, 3),
    200.0, (("anger", 57), ("other", 26), ("happiness", 26), ("surprise", 15), ("contempt", 12),
            ("disgust", 9), ("fear", 8), ("sadness", 6)),
    grey=True, source="SAMM_Micro_FACS_Codes_v2.xlsx, counted")
# SMIC-HS: the MEGC2019 ground truth's SMIC part (= the HS cut clips; 164 clips, 16 subjects).
# Subject folders of the cut clips are not zero-padded (s1).
_SMIC_HS = RealShape(
    "smic", "SMIC-HS (smic/hs)",
    ("s1", "s2", "s3", "s4", "s5", "s6", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s18",
     "s19", "s20"),
    (6, 6, 39, 19, 2, 4, 13, 4, 7, 9, 10, 10, 4, 7, 2, 22),
    100.0, (("negative", 70), ("positive", 51), ("surprise", 43)),
    grey=False, source="megc2019 combined_3class_gt.csv (SMIC rows), counted")
# SMIC-VIS and -NIR: the SMIC-E VIS sheet (71 clips of 8 subjects; NIR has the same clips).
_SMIC_VIS_SUBJECTS = ("s11", "s12", "s13", "s14", "s15", "s18", "s19", "s20")
_SMIC_VIS_CLIPS = (7, 9, 10, 10, 4, 7, 2, 22)
_SMIC_VIS_EMOTIONS = (("positive", 28), ("negative", 24), ("surprise", 19))
_SMIC_VIS = RealShape("smic", "SMIC-VIS (smic/vis)", _SMIC_VIS_SUBJECTS, _SMIC_VIS_CLIPS, 25.0,
                      _SMIC_VIS_EMOTIONS, grey=False,
                      source="SMIC-HS-E_annotation.xlsx sheet VIS, counted")
_SMIC_NIR = RealShape("smic", "SMIC-NIR (smic/nir)", _SMIC_VIS_SUBJECTS, _SMIC_VIS_CLIPS, 25.0,
                      _SMIC_VIS_EMOTIONS, grey=True,
                      source="as SMIC-VIS (DATASETS.md: the same 71 clips, near-infrared)")
# CAS(ME)^2 micro-expressions: 57 clips of the 14 participants that have any (the other 8 of its
# 22 participants have only macro-expressions); subject folders via naming rule 1.
_CASME_SQ = RealShape(
    "casme_sq", "CAS(ME)^2 micro-expressions (casme_sq/micro)",
    ("s15", "s16", "s19", "s23", "s24", "s25", "s27", "s29", "s30", "s31", "s32", "s35", "s37",
     "s38"),
    (2, 8, 1, 3, 8, 4, 11, 1, 2, 6, 6, 2, 2, 1),
    30.0, (("negative", 21), ("others", 19), ("surprise", 9), ("positive", 8)),
    grey=False, source="CAS(ME)^2code_final(Updated).csv micro rows, counted")
# CAS(ME)^2 macro-expressions as its builder stores them (casme_sq/macro): the 252 of the 300
# macro rows with a usable timing (44 have no offset, 4 other rows fail validation), 20 subjects.
_CASME_SQ_MACRO = RealShape(
    "casme_sq", "CAS(ME)^2 macro-expressions (casme_sq/macro)",
    ("s15", "s16", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s30", "s31",
     "s32", "s33", "s34", "s36", "s37", "s38", "s40"),
    (13, 43, 4, 3, 2, 7, 8, 22, 4, 5, 30, 12, 22, 45, 4, 1, 2, 15, 8, 2),
    30.0, (("negative", 96), ("positive", 91), ("others", 52), ("surprise", 13)),
    grey=False, source="CAS(ME)^2code_final(Updated).csv macro rows kept by records.validate")
# CASME (v1): 195 clips at 60 fps (Yan et al. 2013 abstract); 19 subjects UNVERIFIED; no public
# sheet, so the per-subject counts are unknown (spread unevenly here) and the emotion balance is
# Yan et al.'s table as remembered (UNVERIFIED: 192 clips; amusement stored as happiness),
# scaled to 195 by largest remainders.
_CASME = RealShape(
    "casme", "CASME (casme/raw)", tuple(f"sub{i:02d}" for i in range(1, 20)),
    _spread(195, 19, seed=195),
    60.0, (("disgust", 89), ("repression", 41), ("tense", 29), ("surprise", 20), ("sadness", 6),
           ("happiness", 5), ("contempt", 3), ("fear", 2)),
    grey=False, source="195 clips at 60 fps [V-src]; subjects and emotion balance UNVERIFIED")
# CK+: 327 labelled sequences of 123 subjects (ReadMe); per-class counts and 30 fps UNVERIFIED;
# per-subject counts unknown (spread). Frames mostly grey.
_CKPLUS = RealShape(
    "ckplus", "CK+ (ckplus)", tuple(f"S{5 + 4 * i:03d}" for i in range(123)),
    _spread(327, 123, seed=327),
    30.0, (("surprise", 83), ("happiness", 69), ("disgust", 59), ("anger", 45), ("sadness", 28),
           ("fear", 25), ("contempt", 18)),
    grey=True, source="123 subjects, 327 labelled [V-src]; class counts, fps UNVERIFIED")
# MUG subjects3: 52 subjects, 7 folders (DATASETS.md); takes per emotion unknown: one each here.
_MUG_EMOTIONS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
_MUG = RealShape(
    "mug", "MUG (mug)", tuple(f"{i:03d}" for i in range(1, 53)), (len(_MUG_EMOTIONS),) * 52,
    19.0, tuple((e, 52) for e in _MUG_EMOTIONS),
    grey=False, source="52 subjects, 7 emotions [V-code]; one take each and 19 fps UNVERIFIED")
# Oulu-CASIA VL/Strong: 80 subjects x 6 expressions = 480 sequences, 25 fps.
_OULU_EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
_OULU = RealShape(
    "oulu_casia", "Oulu-CASIA VL/Strong (oulu_casia/vl_strong)",
    tuple(f"P{i:03d}" for i in range(1, 81)), (6,) * 80, 25.0,
    tuple((e, 80) for e in _OULU_EMOTIONS),
    grey=False, source="80 subjects x 6 expressions, 25 fps [V-src]")

# ---- the stand-ins -----------------------------------------------------------------------------
# Populations: the CASME corpora recruited Chinese students (light to medium tones), SMIC and
# Oulu-CASIA mostly Finnish (and Chinese) volunteers, MUG Caucasians, SAMM 13 ethnicities, CK+
# mostly Euro- and Afro-American adults. Cameras and lighting are plausible, not measured.

_CASME_POPULATION = dict(skin_tone=(1.0, 3.0))

STAND_INS = {s.name: s for s in (
    StandIn("casme", _CASME, _micro(
        seed=1001, size=112, naming="casme", stores_objective_class=False,
        identity_ranges=faces.IdentityRanges(**_CASME_POPULATION, background=(110.0, 200.0)),
        camera=render.Camera(gain=1.05, contrast=0.9, colour_cast=(1.06, 1.0, 0.9), blur_px=0.6),
        nuisance=Nuisance(drift_px=2.0, roll_deg=1.0, noise_std=3.0, illumination=0.06),
        **_shape_config(_CASME, emotion_counts=_CASME.emotions))),
    StandIn("casme2", _CASME2, _micro(
        seed=1002, size=128, naming="casme2",
        identity_ranges=faces.IdentityRanges(**_CASME_POPULATION, background=(150.0, 220.0),
                                             half_width=(40.0, 48.0), half_height=(52.0, 60.0)),
        camera=render.Camera(gain=1.1, colour_cast=(1.0, 1.0, 1.03)),
        nuisance=Nuisance(drift_px=1.2, roll_deg=0.6, noise_std=2.0, illumination=0.03,
                          brightness=0.06),
        **_shape_config(_CASME2, emotion_counts=_CASME2.emotions))),
    StandIn("casme_sq", _CASME_SQ, _micro(
        seed=1003, size=96, naming="casme_sq", stores_objective_class=False,
        identity_ranges=faces.IdentityRanges(**_CASME_POPULATION, background=(120.0, 200.0)),
        camera=render.Camera(contrast=0.85, colour_cast=(0.95, 1.0, 1.08), blur_px=0.8),
        nuisance=Nuisance(drift_px=2.5, roll_deg=1.2, noise_std=4.0, illumination=0.08,
                          pose_shift_px=3.0, pose_roll_deg=3.0),
        **_shape_config(_CASME_SQ, emotion_counts=_CASME_SQ.emotions))),
    # The same participants, camera and room as casme_sq (shared identity_seed): spontaneous
    # macro-expressions, stored onset -> apex -> offset.
    StandIn("casme_sq_macro", _CASME_SQ_MACRO, generate.SyntheticConfig(
        kind="macro_released", seed=1011, identity_seed=1003, size=96, naming="casme_sq_macro",
        stores_objective_class=False,
        identity_ranges=faces.IdentityRanges(**_CASME_POPULATION, background=(120.0, 200.0)),
        camera=render.Camera(contrast=0.85, colour_cast=(0.95, 1.0, 1.08), blur_px=0.8),
        nuisance=Nuisance(drift_px=2.5, roll_deg=1.2, noise_std=4.0, illumination=0.08,
                          pose_shift_px=3.0, pose_roll_deg=3.0),
        **_shape_config(_CASME_SQ_MACRO, emotion_counts=_CASME_SQ_MACRO.emotions))),
    StandIn("smic_hs", _SMIC_HS, _micro(
        seed=1004, size=120, naming="smic", timing="unannotated", stores_aus=False,
        stores_objective_class=False,
        identity_ranges=faces.IdentityRanges(skin_tone=(0.0, 2.5), background=(80.0, 160.0)),
        camera=render.Camera(gain=0.85, contrast=1.1, colour_cast=(1.08, 1.0, 0.88)),
        nuisance=Nuisance(drift_px=1.8, roll_deg=0.8, noise_std=3.0, illumination=0.08,
                          brightness=0.15),
        **_shape_config(_SMIC_HS, emotion_counts=_SMIC_HS.emotions))),
    StandIn("smic_vis", _SMIC_VIS, _micro(
        seed=1005, size=104, naming="smic_vis", timing="unannotated", stores_aus=False,
        stores_objective_class=False,
        identity_ranges=faces.IdentityRanges(skin_tone=(0.0, 2.5), background=(80.0, 160.0)),
        camera=render.Camera(gain=0.95, colour_cast=(1.0, 1.02, 1.06), blur_px=0.5),
        nuisance=Nuisance(drift_px=1.8, roll_deg=0.8, noise_std=2.5, illumination=0.06),
        **_shape_config(_SMIC_VIS, emotion_counts=_SMIC_VIS.emotions))),
    StandIn("smic_nir", _SMIC_NIR, _micro(
        seed=1006, size=108, naming="smic_nir", timing="unannotated", stores_aus=False,
        stores_objective_class=False,
        identity_ranges=faces.IdentityRanges(skin_tone=(0.0, 2.5), background=(80.0, 160.0)),
        camera=render.Camera(gain=1.15, contrast=0.8, grey_weights=(0.75, 0.2, 0.05),
                             blur_px=0.7),
        nuisance=Nuisance(drift_px=1.8, roll_deg=0.8, noise_std=4.0, illumination=0.04),
        **_shape_config(_SMIC_NIR, emotion_counts=_SMIC_NIR.emotions))),
    StandIn("samm", _SAMM, _micro(
        seed=1007, size=144, naming="samm",
        identity_ranges=faces.IdentityRanges(background=(60.0, 120.0), half_width=(36.0, 44.0),
                                             half_height=(48.0, 56.0)),
        camera=render.Camera(contrast=1.15),
        nuisance=Nuisance(drift_px=1.0, roll_deg=0.5, noise_std=1.5, illumination=0.02,
                          brightness=0.05),
        **_shape_config(_SAMM, emotion_counts=_SAMM.emotions))),
    StandIn("ckplus", _CKPLUS, generate.SyntheticConfig(
        kind="macro", seed=1008, size=160, naming="ckplus", timing="onset_to_peak",
        stores_objective_class=False,
        identity_ranges=faces.IdentityRanges(skin_tone=(0.0, 5.5), background=(90.0, 170.0)),
        camera=render.Camera(contrast=1.05, blur_px=0.4),
        nuisance=Nuisance(drift_px=1.5, noise_std=2.5),
        **_shape_config(_CKPLUS, emotion_counts=_CKPLUS.emotions))),
    StandIn("mug", _MUG, generate.SyntheticConfig(
        kind="macro_released", seed=1009, size=136, naming="mug", timing="unannotated",
        stores_aus=False, stores_objective_class=False,
        identity_ranges=faces.IdentityRanges(skin_tone=(0.0, 2.0), background=(160.0, 230.0)),
        camera=render.Camera(gain=1.1, colour_cast=(0.96, 1.0, 1.06)),
        nuisance=Nuisance(drift_px=1.0, noise_std=1.5, brightness=0.05),
        **_shape_config(_MUG, subject_emotions=_MUG_EMOTIONS))),
    StandIn("oulu_casia", _OULU, generate.SyntheticConfig(
        kind="macro", seed=1010, size=100, naming="oulu_casia", timing="onset_to_peak",
        stores_aus=False, stores_objective_class=False,
        identity_ranges=faces.IdentityRanges(skin_tone=(0.0, 3.0), background=(30.0, 90.0)),
        camera=render.Camera(gain=0.9, contrast=1.1, colour_cast=(1.04, 1.0, 0.94),
                             blur_px=0.9),
        nuisance=Nuisance(drift_px=2.0, noise_std=3.0, illumination=0.06),
        **_shape_config(_OULU, subject_emotions=_OULU_EMOTIONS))),
)}

PRESETS = {name: stand_in.config for name, stand_in in STAND_INS.items()}
