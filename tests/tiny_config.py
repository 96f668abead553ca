"""The tiny end-to-end config of tests/test_train.py as a config file, for subprocess runs:

  python -m mejax.main --config tests/tiny_config.py --config.data.data_dir=DIR --workdir W
"""

import importlib.util
import pathlib

_CONVLSTM = pathlib.Path(__file__).resolve().parents[1] / "configs" / "convlstm.py"


def get_config(arg=None):
  del arg
  spec = importlib.util.spec_from_file_location("convlstm_config", _CONVLSTM)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config("smoke")
  c.data.datasets = ("synthetic_me/micro_tiny",)
  c.data.size = 16
  c.data.num_frames = 4
  c.model.width_multiplier = 1 / 32
  c.train.batch_size = 4
  c.train.num_epochs = 2
  c.train.steps_per_epoch = 2
  c.eval.every_epochs = 1
  c.eval.batch_size = 8
  c.train.rotate_degrees = 8.0  # keep every on-device path of the paper config in play
  c.train.class_weighted_loss = True
  c.train.fold_strategy = "vmap"  # the multi-device path; 'loop' is single-device
  c.progress = False
  return c
