"""python -m mejax.prepare synthetic_me/micro [--data_dir DIR]: builds TFDS datasets of mejax.

The same as `tfds build tfds_builders/<name> --config <config>`, without the CLI's extra
dependencies (tfds 4.9's command line imports apache-beam and mlcroissant at start-up).
Building an already built dataset does nothing.

  python -m mejax.prepare --config configs/convlstm.py:megc_sweep [--data_dir DIR]

builds the config's datasets and writes the view cache its training reads
(`<data_dir>/mejax_views/`), so the run can go to a machine without TensorFlow.
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

_DATA_DIR = flags.DEFINE_string(
    "data_dir", os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets")),
    "TFDS data directory to build into.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None,
                                  "Where a licensed dataset lies on disk (real datasets only).")
config_flags.DEFINE_config_file("config", None, "Also build this experiment config's datasets "
                                "and its view cache (file.py[:preset]).", lock_config=True)


def main(argv):
  names = argv[1:]
  config = flags.FLAGS.config
  if config is not None:
    config.data.data_dir = _DATA_DIR.value
    names += [n for n in config.data.datasets if n not in names]
  if not names:
    raise app.UsageError("Name at least one dataset (e.g. synthetic_me/micro) or a --config")
  from mejax.data import clipset
  tfds = clipset.import_tfds()

  for name in names:
    try:
      builder = tfds.builder(name, data_dir=_DATA_DIR.value)
    except tfds.core.registered.DatasetNotFoundError as e:
      raise app.UsageError(f"Unknown dataset {name!r}: {e}") from None
    download = tfds.download.DownloadConfig(manual_dir=_MANUAL_DIR.value)
    builder.download_and_prepare(download_config=download)
    print(f"{builder.info.full_name}: {builder.info.splits.total_num_examples} clips in "
          f"{builder.data_dir}")
  if config is not None:
    from mejax.data import view_cache
    clips, view = view_cache.load_or_build(config.data)
    print(f"View {view.shape} of {len(clips)} clips cached in "
          f"{view_cache.cache_path(config.data)}")


if __name__ == "__main__":
  app.run(main)
