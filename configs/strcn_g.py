"""STRCN-G (Xia et al., MODELS.md §5): recurrent convolutional network on onset -> apex flow.

  python -m mejax.main --config configs/strcn_g.py --workdir runs/strcn_g
  python -m mejax.main --config configs/strcn_g.py:smoke --workdir runs/strcn_g_smoke

Input: the optical flow (data.flow_method: Farneback, or 'tvl1' where
opencv-contrib-python-headless of the same 4.x version replaces opencv-python-headless;
data.flow_strain adds the optical strain as a third channel) between the onset and the apex of
the magnified clip (the apex estimated as argmax_t std(I(t) - I(0)) where not annotated),
quantised to uint8 over +-data.flow_range pixels, 2 channels. Presets: (none) 144x144 flow (Table I's pools need >= 132 px), M = 64 feature maps,
magnification alpha 8 for the evaluated clips and 5..14 for training (each training clip is drawn
from one of the 10 magnified versions, cached as views of their own), SGD momentum 0.9, weight
decay 5e-4, lr 1e-3 x 0.8 per epoch, batch 20, STRCN's balanced loss, LOSO; smoke:
synthetic_me/micro, 24 LOSO folds, 32x32 flow with 2x2 pools, M = 16, 8 epochs.
The paper's random frame selection (x5) is STRCN-A's (configs/strcn_a.py): STRCN-G's input is one
onset -> apex flow field, which keeping 60-100 % of the frames between them does not change.
"""

import pathlib

from mejax import config_files


def get_config(arg: str | None = None):
  c = config_files.skeleton(pathlib.Path(__file__).parent,
                            {"name": "strcn_g", "features": 64, "pool_windows": None})
  c.data.view = "flow"
  c.data.size = 144
  c.data.magnify_alpha = 8.0         # the evaluated view (and STRCN-A's pixel selection)
  # Training draws each clip from one of 10 views magnified by 5..14 (the paper's x10).
  c.data.train_magnify_alphas = tuple(float(a) for a in range(5, 15))
  c.data.flow_range = 4.0
  c.data.flow_method = "farneback"   # or "tvl1" (opencv-contrib)
  c.data.flow_strain = False         # True: + optical strain channel (0..strain_range)
  c.data.strain_range = 1.0
  c.data.normalisation = "unit"
  c.protocol.name = "loso"
  config_files.paper_sgd(c, learning_rate=1e-3, momentum=0.9, batch_size=20, num_epochs=30,
                         eval_every=5)
  c.train.weight_decay = 5e-4
  c.train.lr_schedule = "exponential"
  c.train.lr_decay = 0.8
  c.train.loss = "balanced"
  c.eval.extra_metrics = ("micro_f1",)  # the paper's F1-score is micro-averaged (its §IV-B)
  _, smoke = config_files.parse_preset(arg, (), "configs/strcn_g.py")
  if smoke:
    config_files.smoke(c)
    c.data.size = 32
    c.model.features = 16
    c.model.pool_windows = ((2, 2), (2, 2), (2, 2), (2, 2))
    c.train.learning_rate = 0.05
    c.train.lr_decay = 0.9
  return c
