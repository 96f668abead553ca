"""python -m mejax.annotations DATASET PATH [--json] [--repair midpoint]

Prints the records a dataset's annotation parser reads from PATH (an annotation sheet, or the
folder tree for datasets labelled by folder names) after the timing checks a build applies
(`--repair` as the builder's `repair` option), then the rows left out and why, and counts:
`rows` read, `usable`, `skipped`, subjects, and emotions / 3-class labels over all rows read.
Check your files with it before starting a long build.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import pathlib
import sys

from mejax import annotations
from mejax import cli
from mejax.annotations import records
from mejax.annotations.sheets import AnnotationError

_TABLE_COLUMNS = ("sample_id", "subject", "emotion", "three_class", "action_units",
                  "objective_class", "onset", "apex", "offset", "repaired")


def summary(parsed: records.Parsed, checked: records.Parsed) -> dict:
  """Counts of the rows read (`parsed`) and of what a build would use (`checked`)."""
  emotions = collections.Counter(s.emotion for s in parsed.samples)
  three = collections.Counter(s.three_class or "(none)" for s in parsed.samples)
  return {"rows": len(parsed.samples) + len(parsed.skipped), "usable": len(checked.samples),
          "skipped": len(checked.skipped), "repaired": sum(bool(s.repaired) for s in checked.samples),
          "subjects": len({s.subject for s in parsed.samples}),
          "emotions": dict(sorted(emotions.items(), key=lambda kv: (-kv[1], kv[0]))),
          "three_class": dict(sorted(three.items()))}


@contextlib.contextmanager
def _held_logs():
  """Holds the parsers' log records back (yielding the list they go to), so that a file that
  fails to parse ends in its one error line, not after warnings about rows read before."""
  logger = logging.getLogger("mejax")
  held: list[logging.LogRecord] = []
  handler = logging.Handler()
  handler.emit = held.append
  propagate = logger.propagate
  logger.addHandler(handler)
  logger.propagate = False
  try:
    yield held
  finally:
    logger.removeHandler(handler)
    logger.propagate = propagate


def error_line(path: str, error: Exception) -> str:
  """One line `<file>: <what was expected>` for a parse error of `path`.

  Parser messages name the file they are about; one that does not start with `path` (a row of
  a sheet, a dataset's folder check, an OS error) gets `path` in front, so the line always says
  which input failed.
  """
  if isinstance(error, OSError) and not isinstance(error, FileNotFoundError) and error.filename:
    message = f"{error.filename}: cannot be read ({error.strerror or error})"
  else:
    message = str(error)
  message = " ".join(message.split())  # builders' messages may span lines; stderr gets one
  given = str(pathlib.Path(path))
  return message if message.startswith(given) else f"{given}: {message}"


def main(argv=None) -> int:
  ap = cli.ArgumentParser(prog="python -m mejax.annotations", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("dataset", choices=sorted(annotations.PARSERS))
  ap.add_argument("path", help="annotation file, or folder tree for folder-labelled datasets")
  ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
  ap.add_argument("--repair", default="skip", choices=records.REPAIR_POLICIES,
                  help="what to do with rows whose apex is missing or outside onset..offset")
  args = ap.parse_args(argv)
  try:
    with _held_logs() as held:
      parsed = annotations.parse(args.dataset, args.path, repair=args.repair)
  except (AnnotationError, OSError) as e:
    print(f"error: {error_line(args.path, e)}", file=sys.stderr)
    return 2
  for record in held:  # the parse succeeded: its warnings go out as they would have
    logging.getLogger(record.name).handle(record)
  checked = records.validate(parsed.samples, args.repair)
  checked.skipped[:0] = parsed.skipped
  if args.json:
    json.dump({"dataset": args.dataset, "path": str(args.path),
               "summary": summary(parsed, checked),
               "samples": [s.as_dict() for s in checked.samples],
               "skipped": [s.as_dict() for s in checked.skipped]}, sys.stdout, indent=1)
    print()
    return 0
  rows = [[str(getattr(s, c)) for c in _TABLE_COLUMNS] for s in checked.samples]
  widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(_TABLE_COLUMNS)]
  print("  ".join(c.ljust(w) for c, w in zip(_TABLE_COLUMNS, widths)))
  for r in rows:
    print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
  for skip in checked.skipped:
    print(f"skipped {skip.sample_id} ({skip.file}): {skip.reason}")
  print(json.dumps(summary(parsed, checked)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
