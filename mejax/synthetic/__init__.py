"""Procedural faces and action-unit motion: the embedded `synthetic_me` dataset.

Modules (numpy + OpenCV only; nothing here imports TensorFlow):
  faces        identities (`sample_identity`) and neutral face rendering (`render_face`)
  motion       AU displacement fields, temporal profiles, class-independent nuisance
  render       the public renderer: `Expression`, `render_clip` (also used by fake raw layouts)
  generate     corpora in the `mejax.data.schema` record format (`generate_samples`, `PRESETS`)
  calibration  LOSO logistic-regression probes: apex frame (must be ~chance) vs apex-onset
"""

from mejax.synthetic.render import (LANDMARK_NAMES, Expression, Identity, Nuisance, RenderedClip,
                                    render_clip, render_face, sample_identity)

__all__ = ["Expression", "Identity", "LANDMARK_NAMES", "Nuisance", "RenderedClip", "render_clip",
           "render_face", "sample_identity"]
