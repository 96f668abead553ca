"""python -m mejax.prepare synthetic_me/micro [--data_dir DIR]: builds TFDS datasets of mejax.

Licensed datasets are read from where the user keeps them:

  python -m mejax.prepare casme2/cropped --manual_dir /data/CASME2
  python -m mejax.prepare smic/hs casme2/cropped samm/raw \
      --manual_dir smic=/data/SMIC --manual_dir casme2=/data/CASME2 --manual_dir samm=/data/SAMM

The same as `tfds build tfds_builders/<name> --config <config>`, without the CLI's extra
dependencies (tfds 4.9's command line imports apache-beam and mlcroissant at start-up).
Building an already built dataset does nothing.

  python -m mejax.prepare --config configs/convlstm.py:megc_sweep [--data_dir DIR]

builds the config's datasets and writes the view cache its training reads
(`<data_dir>/mejax_views/`), so the run can go to a machine without TensorFlow.

A dataset that cannot be built from its input (the manual dir missing, empty or a file; a file
the dataset needs missing, unreadable or damaged) ends in one line `error: ...`, exit status 2.
"""

import os

from absl import flags
from ml_collections import config_flags

from mejax import config_files
from mejax import tfds_build

_DATA_DIR = flags.DEFINE_string(
    "data_dir", os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets")),
    "TFDS data directory to build into.")
_MANUAL_DIR = flags.DEFINE_multi_string(
    "manual_dir", [], "Where a licensed dataset lies on disk: a folder (for every dataset named) "
    "or NAME=FOLDER per dataset (repeat the flag).")
config_flags.DEFINE_config_file("config", None, "Also build this experiment config's datasets "
                                "and its view cache (file.py[:preset]).", lock_config=True)


def manual_dir(name: str, values: list[str]) -> str | None:
  """The manual dir of dataset `name` ("casme2/cropped") from the --manual_dir values."""
  dataset = name.split("/")[0].split(":")[0]
  plain = [v for v in values if "=" not in v]
  named = dict(v.split("=", 1) for v in values if "=" in v)
  if dataset in named:
    return os.path.expanduser(named[dataset])
  if len(plain) > 1:
    raise ValueError(f"--manual_dir: several folders without NAME= ({plain}); give "
                     "NAME=FOLDER for each dataset")
  return os.path.expanduser(plain[0]) if plain else None


def main(argv):
  names = argv[1:]
  config = flags.FLAGS.config
  if config is not None:
    config.data.data_dir = _DATA_DIR.value
    from mejax.data import stand_ins
    names += [n for n in stand_ins.resolve(config.data) if n not in names]
  if not names:
    raise ValueError("Name at least one dataset (e.g. synthetic_me/micro) or a --config whose "
                     "data.datasets is not empty")
  if os.path.exists(_DATA_DIR.value) and not os.path.isdir(_DATA_DIR.value):
    raise ValueError(f"--data_dir {_DATA_DIR.value}: is a file; expected the folder datasets "
                     "are built into")
  datasets = {name.split("/")[0].split(":")[0] for name in names}
  for value in _MANUAL_DIR.value:
    named = value.split("=", 1)[0] if "=" in value else None
    if named is not None and named not in datasets:
      raise ValueError(f"--manual_dir {value}: {named!r} is not a dataset being built "
                       f"({', '.join(sorted(datasets))}); use NAME=FOLDER with one of them")
  from mejax.data import clipset
  tfds = clipset.import_tfds()

  for name in names:
    builder = clipset.construct_builder(tfds, name, _DATA_DIR.value)
    download = tfds.download.DownloadConfig(manual_dir=manual_dir(name, _MANUAL_DIR.value))
    # A manual dir that is missing, empty or a file ends in one `error:` line, exit status 2.
    tfds_build.report_input_errors(
        lambda: builder.download_and_prepare(download_config=download))
    counts = (builder.info.metadata or {}).get("counts")
    skipped = f", {counts['skipped']} skipped (see metadata.json)" if counts else ""
    print(f"{builder.info.full_name}: {builder.info.splits.total_num_examples} clips in "
          f"{builder.data_dir}{skipped}")
  if config is not None:
    from mejax.data import view_cache
    clips, view, _ = view_cache.load_or_build_with_variants(config.data)
    print(f"View {view.shape} of {len(clips)} clips cached in "
          f"{view_cache.cache_path(config.data)}")
    for variant in view_cache.variant_configs(config.data):
      print(f"Training view at magnify_alpha {variant.magnify_alpha} cached in "
            f"{view_cache.cache_path(variant)}")


if __name__ == "__main__":
  config_files.run_command(main)
