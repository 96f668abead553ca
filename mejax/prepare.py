"""python -m mejax.prepare synthetic_me/micro [--data_dir DIR]: builds TFDS datasets of mejax.

The same as `tfds build tfds_builders/<name> --config <config>`, without the CLI's extra
dependencies (tfds 4.9's command line imports apache-beam and mlcroissant at start-up).
Building an already built dataset does nothing.
"""

import os

from absl import app
from absl import flags

_DATA_DIR = flags.DEFINE_string(
    "data_dir", os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets")),
    "TFDS data directory to build into.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None,
                                  "Where a licensed dataset lies on disk (real datasets only).")


def main(argv):
  names = argv[1:]
  if not names:
    raise app.UsageError("Name at least one dataset, e.g. synthetic_me/micro")
  from mejax.data import clipset
  tfds = clipset.import_tfds()

  for name in names:
    try:
      builder = tfds.builder(name, data_dir=_DATA_DIR.value)
    except tfds.core.registered.DatasetNotFoundError as e:
      raise app.UsageError(f"Unknown dataset {name!r}: {e}") from None
    config = tfds.download.DownloadConfig(manual_dir=_MANUAL_DIR.value)
    builder.download_and_prepare(download_config=config)
    print(f"{builder.info.full_name}: {builder.info.splits.total_num_examples} clips in "
          f"{builder.data_dir}")


if __name__ == "__main__":
  app.run(main)
