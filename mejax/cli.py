"""What mejax's argparse commands share: a bad command line ends, like every other user
mistake, in one line `error: ...` with exit status 2, and numbers are checked as they are read."""

from __future__ import annotations

import argparse
import sys


class ArgumentParser(argparse.ArgumentParser):
  """argparse's parser, ending a bad command line in one `error:` line (not the usage block)."""

  def error(self, message: str):
    print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
    sys.exit(2)


def at_least(minimum: float, kind=int):
  """An argparse `type` reading a `kind` number and refusing one below `minimum`."""
  return _checked(kind, lambda value: value >= minimum,
                  lambda value: f"{value} is below {minimum}; expected {_names[kind]} >= {minimum}")


def positive(kind=float):
  """An argparse `type` reading a `kind` number and refusing zero or less."""
  return _checked(kind, lambda value: value > 0,
                  lambda value: f"{value}: expected {_names[kind]} > 0")


def _checked(kind, allowed, refusal):
  def read(text: str):
    try:
      value = kind(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{text!r} is not {_names[kind]}") from None
    if not allowed(value):
      raise argparse.ArgumentTypeError(refusal(value))
    return value

  return read


_names = {int: "an integer", float: "a number"}


def close_progress_bars() -> None:
  """Closes the progress bars a failed command left open (TFDS's tqdm), so that its error line
  starts a line of its own and no bar redraws after it."""
  import tqdm
  bars = list(getattr(tqdm.tqdm, "_instances", ()))
  for bar in bars:
    bar.close()
  if bars:
    sys.stderr.write("\n")
