"""Writing a workdir's files: whole or not at all, readable like any tool's, and a full disk said
plainly.

Every result a later run or reader trusts (config.json, folds.json, predictions.csv,
metrics.json, plots) is written to a temporary sibling and renamed over its name, so an
interrupted or failed write never leaves a truncated file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import shutil
import tempfile


class DiskFull(OSError):
  """No space left on the device of a file mejax was writing; the message says which, and how
  much space was free."""

  def __str__(self) -> str:
    return self.strerror  # the message alone, without OSError's "[Errno 28]"


def _umask() -> int:
  current = os.umask(0)
  os.umask(current)
  return current


def replace(temporary: str | os.PathLike, path: pathlib.Path) -> None:
  """Renames a finished temporary file over `path`, with the permissions `open` would have given
  (temporary files are created 0600)."""
  os.chmod(temporary, 0o666 & ~_umask())
  os.replace(temporary, path)


@contextlib.contextmanager
def atomic(path: pathlib.Path, mode: str = "w", suffix: str = ".tmp"):
  """Yields a temporary sibling of `path` open for writing; once the block ends it is synced
  and renamed over `path`, and when the block fails it is removed (a full disk: DiskFull)."""
  path = pathlib.Path(path)
  if path.is_dir():
    raise IsADirectoryError(f"{path}: is a folder where a file is written; move it away")
  temporary = None
  try:
    text = {} if "b" in mode else {"newline": ""}
    with tempfile.NamedTemporaryFile(mode, dir=path.parent, delete=False, suffix=suffix,
                                     **text) as f:
      temporary = f.name
      yield f
      f.flush()
      os.fsync(f.fileno())  # whole on disk before it takes the name, even across a crash
    replace(temporary, path)
  except BaseException as e:
    if temporary is not None and os.path.exists(temporary):
      os.unlink(temporary)
    if isinstance(e, OSError):
      raise as_disk_full(e, path) or e
    raise


def write_atomic(path: pathlib.Path, text: str) -> None:
  """Writes `text` to `path` whole or not at all."""
  with atomic(path) as f:
    f.write(text)


def is_disk_full(error: BaseException) -> bool:
  """Whether `error`, or an error it was raised from, is ENOSPC (or EDQUOT: over quota)."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    if "No space left on device" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def as_disk_full(error: BaseException, path: pathlib.Path, needed: int | None = None
                 ) -> DiskFull | None:
  """A DiskFull naming `path`, the free space there and, when known, the bytes the write needed;
  None when `error` is not a full disk."""
  if not is_disk_full(error):
    return None
  path = pathlib.Path(path)
  where = path if path.exists() else path.parent
  while not where.exists() and where != where.parent:
    where = where.parent
  free = shutil.disk_usage(where).free
  need = f" (it needs about {_mib(needed)})" if needed else ""
  return DiskFull(errno.ENOSPC, f"no space left on the device of {path} while writing it{need}; "
                  f"{_mib(free)} free there. Free some space and run the same command again: "
                  "the run resumes from its last complete checkpoint")


def _mib(n: int) -> str:
  return f"{n / 2 ** 20:.1f} MiB"
