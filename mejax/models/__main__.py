"""python -m mejax.models summary --config CONFIG[:PRESET] [--json]

Per-layer output shapes and parameter counts of an experiment config's model, for the input its
data section produces (`mejax.data.views.view_shape`), traced without allocating the model.
Config fields can be overridden as in `mejax.main` (`--config.data.num_frames=96`).
"""

import json
import sys

from absl import flags
from ml_collections import config_flags

from mejax import config_files

config_flags.DEFINE_config_file("config", None, "Experiment config (file.py[:preset]).",
                                lock_config=True)
_JSON = flags.DEFINE_bool("json", False, "Print JSON instead of a table.")


def main(argv):
  if len(argv) != 2 or argv[1] != "summary":
    raise ValueError(f"expected the command `summary`, got {argv[1:]}: python -m mejax.models "
                     "summary --config CONFIG[:PRESET] [--json]")
  config = flags.FLAGS.config
  if config is None:
    raise ValueError("--config is required: python -m mejax.models summary --config "
                     "CONFIG[:PRESET] [--json]")
  import jax.numpy as jnp

  from mejax import models
  from mejax.data import labels as labels_lib
  from mejax.data import views
  from mejax.models import summary as summary_lib

  num_classes = labels_lib.get_label_map(config.data.label_map).num_classes
  model = models.from_config(config.model, num_classes, jnp.float32)
  shape = (1, *views.view_shape(config.data))
  try:
    result = summary_lib.summarize(model, shape)
  except ValueError as e:  # an input the model cannot take: the model names layer and sizes
    print(f"error: {e}", file=sys.stderr)
    return 2
  result["model"] = config.model.name
  if _JSON.value:
    print(json.dumps(result, indent=1))
  else:
    print(f"model {config.model.name}")
    print(summary_lib.format_table(result))
  return 0


if __name__ == "__main__":
  config_files.run_command(main)
