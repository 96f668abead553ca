"""STRCN-A (Xia et al., MODELS.md §5): recurrent convolutional network on selected pixels x time.

  python -m mejax.main --config configs/strcn_a.py --workdir runs/strcn_a
  python -m mejax.main --config configs/strcn_a.py:smoke --workdir runs/strcn_a_smoke

Input: the magnified clip (alpha 8) resampled to 30 frames spread over onset..offset; per fold,
the p = 30 % pixels of largest change sum_i sum_t |I_i(t) - I_i(0)| over that fold's TRAINING
clips are kept (`strcn.select_pixels`, set before training), and each clip becomes the
(P pixels x 30 frames x 3) image STRCN-A classifies. Faces are 64x64 here (the paper: 64x48).
Training as configs/strcn_g.py (SGD momentum 0.9, weight decay 5e-4, lr 1e-3 x 0.8 per epoch,
batch 20, balanced loss, LOSO). No flips or rotations: they would move pixels off the selection.
Presets: smoke: synthetic_me/micro, 24 LOSO folds, 32x32 faces, 16 frames, M = 16, 8 epochs.
Augmentation, the paper's x50: each training clip is drawn from one of 10 views magnified by
5..14 (the evaluated view and the pixel selection use alpha 8), then keeps a random 100/90/80/
70/60 % of its frames, stretched back to the clip length. Reports micro-F1 as strcn_g.py does.
"""

import pathlib

from mejax import config_files


def get_config(arg: str | None = None):
  c = config_files.load(pathlib.Path(__file__).with_name("strcn_g.py"))
  c.model.name = "strcn_a"
  c.model.num_pixels = round(0.3 * 64 * 64)
  del c.model["pool_windows"]
  c.data.view = "uniform"
  c.data.num_frames = 30
  c.data.size = 64
  c.data.normalisation = "kinetics"
  c.train.frame_subsets = (1.0, 0.9, 0.8, 0.7, 0.6)
  for key in ("flow_range", "flow_method", "flow_strain", "strain_range"):
    del c.data[key]
  _, smoke = config_files.parse_preset(arg, (), "configs/strcn_a.py")
  if smoke:
    config_files.smoke(c)
    c.data.size = 32
    c.data.num_frames = 16
    c.model.num_pixels = round(0.3 * 32 * 32)
    c.model.features = 16
    c.train.learning_rate = 0.05
    c.train.lr_decay = 0.9
  return c
