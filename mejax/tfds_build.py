"""python -m mejax.tfds_build DATASET_DIR_OR_NAME [tfds build flags]: TFDS's own `tfds build`.

The same command, arguments and behaviour as `tfds build` (`--manual_dir`, `--config`,
`--data_dir`, `--overwrite`, ...), e.g.

  python -m mejax.tfds_build tfds_builders/casme2 --config cropped --manual_dir /data/CASME2

tensorflow-datasets 4.9's `tfds` executable also loads its `convert_format` and
`build_croissant` subcommands at start-up, which import apache-beam and mlcroissant (and those
pin an older protobuf than TensorFlow uses here). This entry point runs the `build` subcommand
alone, so it needs neither. Where both are installed, plain `tfds build` works the same.

A build that cannot start from its input (the manual dir missing, empty or a file; a file the
dataset needs missing, unreadable or damaged) ends in one line `error: ...` with exit status 2.
"""

from __future__ import annotations

import re
import sys

from absl import app

from mejax import cli
from mejax.data import clipset

_NO_MANUAL_DIR = re.compile(r"Manual directory (?P<folder>.+?) does not exist or is empty\..*?"
                            r"instructions:\s*(?P<instructions>.*)", re.DOTALL)


def _one_line(text: str) -> str:
  return " ".join(text.split())


def input_error_line(error: BaseException) -> str | None:
  """The one line (without `error: `) for a build that failed on its input files, or None when
  `error` is not about them.

  Covers TFDS's own manual-dir check (its AssertionError carries the dataset's instructions,
  kept), a manual dir that is a file, the builders' FileNotFoundErrors saying what is expected
  (multi-line: joined), OS errors naming a file, and annotation sheets that cannot be parsed.
  """
  from mejax.annotations.sheets import AnnotationError
  from tfds_builders.clip_builder import BuildError
  if isinstance(error, AssertionError):
    match = _NO_MANUAL_DIR.match(str(error))
    if match is None:
      return None
    return (f"{match['folder']}: does not exist or is empty; expected the dataset's files "
            f"there: {_one_line(match['instructions'])}")
  if isinstance(error, NotADirectoryError) and error.filename:
    return (f"{error.filename}: is a file, not a folder; expected the folder holding the "
            "dataset's files (--manual_dir)")
  if isinstance(error, OSError) and error.filename and error.strerror:
    return f"{error.filename}: cannot be read ({error.strerror})"
  if isinstance(error, (OSError, AnnotationError, BuildError)):
    return _one_line(str(error))
  return None


def report_input_errors(build) -> None:
  """Runs `build()`; an input error (input_error_line) exits with its one line and status 2."""
  try:
    build()
  except (AssertionError, OSError, ValueError) as error:
    line = input_error_line(error)
    if line is None:
      raise
    cli.close_progress_bars()
    print(f"error: {line}", file=sys.stderr)
    sys.exit(2)


def main():
  clipset.import_tfds()  # TensorFlow off the GPUs; the project's builders registered
  from tensorflow_datasets.scripts.cli import build
  from tensorflow_datasets.scripts.cli import cli_utils
  parser = cli_utils.make_flags_parser(build.Args, description="tfds build (mejax entry point)")
  app.run(lambda args: report_input_errors(args.execute), flags_parser=parser)


if __name__ == "__main__":
  main()
