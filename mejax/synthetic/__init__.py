"""Procedural faces and action-unit motion: the embedded `synthetic_me` dataset.

Modules (numpy + OpenCV only; nothing here imports TensorFlow):
  faces        identities (`sample_identity`) and neutral face rendering (`render_face`)
  motion       AU displacement fields, temporal profiles, class-independent nuisance
  render       the public renderer: `Expression`, `render_clip` (also used by fake raw layouts)
  generate     corpora in the `mejax.data.schema` record format (`generate_samples`, `PRESETS`)
  corpora      stand-ins of the licensed datasets, shaped like each (`STAND_INS`, `PRESETS`)
  calibration  LOSO logistic-regression probes: apex frame (must be ~chance) vs apex-onset
"""

from mejax.synthetic.faces import IdentityRanges
from mejax.synthetic.render import (LANDMARK_NAMES, Camera, Expression, Identity, Nuisance,
                                    RenderedClip, render_clip, render_face, sample_identity)

__all__ = ["Camera", "Expression", "Identity", "IdentityRanges", "LANDMARK_NAMES", "Nuisance",
           "RenderedClip", "render_clip", "render_face", "sample_identity"]
