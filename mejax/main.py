"""Entry point: python -m mejax.main --config configs/convlstm.py[:preset] --workdir DIR."""

import logging

from absl import app
from absl import flags
from ml_collections import config_flags

from mejax import train

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and plots.")
config_flags.DEFINE_config_file("config", None, "Experiment config file (file.py[:preset]).",
                                lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.getLogger("absl").setLevel(logging.WARNING)
  train.train_and_evaluate(flags.FLAGS.config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
