"""Talluri et al. 2022 (MODELS.md §4): Model-A, Split-Model, Model-B (= STCNN) and Model-C.

  python -m mejax.main --config configs/model_a.py --workdir runs/model_a
  python -m mejax.main --config configs/model_a.py:split --workdir runs/split_model
  python -m mejax.main --config configs/model_a.py:model_c --workdir runs/model_c
  python -m mejax.main --config configs/model_a.py:smoke --workdir runs/model_a_smoke
  python -m mejax.main --config configs/model_a.py:split,smoke --workdir runs/split_smoke

Presets: (none) Model-A, D = 36 frames centred on the apex (edge frames repeated), 128x128 grey,
SGD lr 1e-3 momentum 0.9, batch 4, 100 epochs, stratified 5-fold; split: Split-Model, D = 26;
model_b: STCNN with this paper's input; model_c: Model-C; smoke: Model-A on
synthetic_me/micro, 24 LOSO folds, 32x32, D = 12, 8 epochs, frames relative to the window's
first (`config_files.smoke_motion`); VARIANT,smoke (e.g. split,smoke,
model_c,smoke): that model resized the same way (Model-B: D = 18).
"""

import pathlib

from mejax import config_files


def get_config(arg: str | None = None):
  c = config_files.skeleton(pathlib.Path(__file__).parent, {"name": "model_a"})
  c.data.view = "apex_window"
  c.data.grey = True
  c.data.size = 128
  c.data.num_frames = 36
  c.protocol.name = "kfold"
  c.protocol.k = 5
  config_files.paper_sgd(c, learning_rate=1e-3, momentum=0.9, batch_size=4, num_epochs=100,
                         eval_every=10)
  variant, smoke = config_files.parse_preset(arg, ("split", "model_b", "model_c"),
                                             "configs/model_a.py")
  if variant == "split":
    c.model.name = "split_model"
    c.data.num_frames = 26
  elif variant == "model_b":
    c.model.name = "model_b"
    c.data.size = 64
  elif variant == "model_c":
    c.model.name = "model_c"
  if smoke:
    config_files.smoke(c)
    c.data.size = 32
    # Model-B's temporal kernel 15 and pool 3 need >= 17 frames; the others take 12.
    c.data.num_frames = 18 if variant == "model_b" else 12
    c.train.batch_size = 16
    c.train.learning_rate = 1e-2
    c.train.balanced_sampling = True
    config_files.smoke_motion(c)  # momentum 0.9 is the paper's already
  return c
