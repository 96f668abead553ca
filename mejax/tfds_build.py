"""python -m mejax.tfds_build DATASET_DIR_OR_NAME [tfds build flags]: TFDS's own `tfds build`.

The same command, arguments and behaviour as `tfds build` (`--manual_dir`, `--config`,
`--data_dir`, `--overwrite`, ...), e.g.

  python -m mejax.tfds_build tfds_builders/casme2 --config cropped --manual_dir /data/CASME2

tensorflow-datasets 4.9's `tfds` executable also loads its `convert_format` and
`build_croissant` subcommands at start-up, which import apache-beam and mlcroissant (and those
pin an older protobuf than TensorFlow uses here). This entry point runs the `build` subcommand
alone, so it needs neither. Where both are installed, plain `tfds build` works the same.
"""

from absl import app

from mejax.data import clipset


def main():
  clipset.import_tfds()  # TensorFlow off the GPUs; the project's builders registered
  from tensorflow_datasets.scripts.cli import build
  from tensorflow_datasets.scripts.cli import cli_utils
  parser = cli_utils.make_flags_parser(build.Args, description="tfds build (mejax entry point)")
  app.run(lambda args: args.execute(), flags_parser=parser)


if __name__ == "__main__":
  main()
