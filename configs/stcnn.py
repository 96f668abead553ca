"""MicroExpSTCNN (Reddy et al. 2019, MODELS.md §3): a 3D CNN over the first D grey frames.

  python -m mejax.main --config configs/stcnn.py --workdir runs/stcnn          # the paper's setting
  python -m mejax.main --config configs/stcnn.py:smoke --workdir runs/stcnn_smoke

Presets: (none) D = 18 (the paper's SMIC setting; D = 96 for CAS(ME)^2 with
`--config.data.num_frames=96`), 64x64 grey, first D frames from the onset (the last one repeated
when shorter), SGD lr 0.01, batch 16 (the public code's), 100 epochs, unweighted loss and
sampling, no augmentation, one stratified 80/20 split (the paper's single split);
smoke: synthetic_me/micro, 24 LOSO folds, 32x32, D = 18, 8 epochs, onset-relative frames and
momentum 0.9 (`config_files.smoke_motion`).
"""

import pathlib

from mejax import config_files


def get_config(arg: str | None = None):
  c = config_files.skeleton(pathlib.Path(__file__).parent, {"name": "stcnn"})
  c.data.view = "first_n"
  c.data.grey = True
  c.data.size = 64
  c.data.num_frames = 18
  c.protocol.name = "holdout"
  c.protocol.test_fraction = 0.2
  config_files.paper_sgd(c, learning_rate=0.01, momentum=0.0, batch_size=16, num_epochs=100,
                         eval_every=10)
  _, smoke = config_files.parse_preset(arg, (), "configs/stcnn.py")
  if smoke:
    config_files.smoke(c)
    c.data.size = 32
    c.data.num_frames = 18  # the temporal kernel 15 and the pool 3 need >= 17
    c.train.balanced_sampling = True  # synthetic_me is imbalanced like the real sets
    config_files.smoke_motion(c, momentum=0.9)
  return c
