"""STRCN-G (Xia et al., MODELS.md §5): recurrent convolutional network on onset -> apex flow.

  python -m mejax.main --config configs/strcn_g.py --workdir runs/strcn_g
  python -m mejax.main --config configs/strcn_g.py:smoke --workdir runs/strcn_g_smoke

Input: the optical flow (Farneback; TV-L1 where opencv-contrib is installed is not wired in)
between the onset and the apex of the magnified clip (the apex estimated as argmax_t
std(I(t) - I(0)) where not annotated), quantised to uint8 over +-data.flow_range pixels, 2
channels. Presets: (none) 144x144 flow (Table I's pools need >= 132 px), M = 64 feature maps,
magnification alpha 8, SGD momentum 0.9, weight decay 5e-4, lr 1e-3 x 0.8 per epoch, batch 20,
STRCN's balanced loss, LOSO; smoke: synthetic_me/micro, 24 LOSO folds, 32x32 flow with 2x2
pools, M = 16, 8 epochs.
Not here yet: STRCN-A (its pixel selection is computed per training fold) and the x50
augmentation (magnification factors x frame subsets).
"""

import pathlib

from mejax import config_files


def get_config(arg: str | None = None):
  c = config_files.skeleton(pathlib.Path(__file__).parent,
                            {"name": "strcn_g", "features": 64, "pool_windows": None})
  c.data.view = "flow"
  c.data.size = 144
  c.data.magnify_alpha = 8.0
  c.data.flow_range = 4.0
  c.data.normalisation = "unit"
  c.protocol.name = "loso"
  config_files.paper_sgd(c, learning_rate=1e-3, momentum=0.9, batch_size=20, num_epochs=30,
                         eval_every=5)
  c.train.weight_decay = 5e-4
  c.train.lr_schedule = "exponential"
  c.train.lr_decay = 0.8
  c.train.loss = "balanced"
  if arg == "smoke":
    config_files.smoke(c)
    c.data.size = 32
    c.model.features = 16
    c.model.pool_windows = ((2, 2), (2, 2), (2, 2), (2, 2))
    c.train.learning_rate = 0.05
    c.train.lr_decay = 0.9
  elif arg not in (None, ""):
    raise ValueError(f"Unknown preset {arg!r} for configs/strcn_g.py; known: smoke")
  return c
