"""MicroExpFuseNet (Reddy et al. 2019, MODELS.md §3): two 3D CNN branches, eyes and nose-mouth.

  python -m mejax.main --config configs/fusenet.py --workdir runs/fusenet      # intermediate fusion
  python -m mejax.main --config configs/fusenet.py:late --workdir runs/fusenet_late
  python -m mejax.main --config configs/fusenet.py:smoke --workdir runs/fusenet_smoke

The two regions are fixed boxes of the eye-aligned face crop (`mejax.preprocess.regions`, layout
"fusenet"; the paper places them with 68 landmarks), 32x32 grey each, stacked on channels.
Training as configs/stcnn.py. Presets: (none) intermediate fusion, D = 18; late: late fusion;
smoke: synthetic_me/micro, 24 LOSO folds, 24x24 regions, D = 18, 8 epochs, onset-relative
frames and momentum 0.9 (`config_files.smoke_motion`); late,smoke.
"""

import pathlib

import ml_collections

from mejax import config_files


def get_config(arg: str | None = None):
  c = config_files.load(pathlib.Path(__file__).with_name("stcnn.py"))
  c.model = ml_collections.ConfigDict({"name": "fusenet", "fusion": "intermediate",
                                       "dense_activation": "relu", "dtype": "float32"})
  c.data.regions = "fusenet"
  c.data.size = 32
  variant, smoke = config_files.parse_preset(arg, ("late",), "configs/fusenet.py")
  if variant == "late":
    c.model.fusion = "late"
  if smoke:
    config_files.smoke(c)
    c.data.size = 24
    c.data.num_frames = 18  # the temporal kernel 15 and the pool 3 need >= 17
    c.train.balanced_sampling = True
    config_files.smoke_motion(c, momentum=0.9)
  return c
