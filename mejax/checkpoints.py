"""Checkpoints of the stacked fold state with orbax: save per epoch, resume, restore.

A workdir holds one experiment: `config.json` (what it is), `folds.json` (fold definitions and
the sample ids they index), and `checkpoints/<epoch>/` with the fold-stacked TrainState, the
per-epoch history and the experiment record (config, folds, the fold of every lane), so that a
checkpoint alone is enough to restore the run anywhere (`mejax.runs`). A workdir holding a
different experiment is refused, never overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pathlib
import socket
import sys
import time
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from mejax import files

log = logging.getLogger(__name__)

# Keys that change how a run is executed or shown, not what it computes: a run may resume with
# other values for them.
RUNTIME_KEYS = ("progress", "checkpoint_every_epochs", "mesh", "data.data_dir", "log_every_steps",
                "train.fold_strategy", "train.fold_chunk", "data.view_cache",
                "model.conv_lowering")


def _without_runtime_keys(config: dict) -> dict:
  config = json.loads(json.dumps(config))
  for dotted in RUNTIME_KEYS:
    node = config
    *parents, leaf = dotted.split(".")
    for p in parents:
      node = node.get(p, {})
    node.pop(leaf, None)
  return config


_OFF_VALUES = (False, 0, "", (), [], None)


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
  if isinstance(a, dict) and isinstance(b, dict):
    out = []
    for k in sorted(set(a) | set(b)):
      if k not in a and b[k] in _OFF_VALUES:
        continue  # a setting added after the run was written, left off: the same experiment
      out += _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{prefix}{k}.")
    return out
  return [] if a == b else [f"{prefix[:-1]}: workdir has {a!r}, config has {b!r}"]


CONFIG_FILE = "config.json"
LOCK_FILE = ".mejax.lock"
# The items every mejax checkpoint holds; a numbered folder without them is another tool's.
ITEMS = ("state", "history", "experiment")


class WorkdirBusy(RuntimeError):
  """Another live process holds the workdir's lock."""


@contextlib.contextmanager
def locked(workdir: pathlib.Path):
  """Holds the workdir's exclusive lock (an flock on W/.mejax.lock) for the block.

  The operating system drops an flock when its process ends, however it ends, so a killed run
  leaves no stale lock behind and its resume is never blocked. The file names the holder.
  """
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / LOCK_FILE
  handle = open(path, "a+")
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    handle.seek(0)
    holder = handle.read().strip() or "a process that has not written its name yet"
    handle.close()
    raise WorkdirBusy(f"{workdir} is in use by another run ({holder}; lock file {path}): wait "
                      "for it to end, or use another --workdir") from None
  handle.seek(0)
  handle.truncate()
  handle.write(f"process {os.getpid()} on {socket.gethostname()} since "
               f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
  handle.flush()
  try:
    yield
  finally:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


def _numbered(workdir: pathlib.Path) -> list[pathlib.Path]:
  folder = workdir / "checkpoints"
  if not folder.is_dir():
    return []
  return sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()),
                key=lambda p: int(p.name))


# What orbax writes into a checkpoint folder of this module's layout.
_CHECKPOINT_ENTRIES = frozenset(ITEMS) | {"_CHECKPOINT_METADATA", "commit_success.txt"}
# The workdir's files and folders (a folder in a file's place would fail only when written).
RESULT_FILES = ("config.json", "folds.json", "skipped_samples.json", "predictions.csv",
                "metrics.json", "confusion_matrix.png", "training_curves.png")
RESULT_FOLDERS = ("checkpoints", "tensorboard")


def check_foreign(workdir: pathlib.Path) -> None:
  """Refuses a workdir that is not a folder, files and folders in each other's places, and
  numbered folders in W/checkpoints that hold another tool's files (they would be read as this
  run's epochs). Incomplete mejax checkpoints are not refused: `set_aside_incomplete`."""
  existing = next(p for p in (workdir, *workdir.parents) if p.exists())
  if not existing.is_dir():
    where = "is a file" if existing == workdir else f"is inside {existing}, a file"
    raise ValueError(f"--workdir {workdir}: {where}; expected a folder (new, or a run's)")
  for name in RESULT_FILES:
    if (workdir / name).is_dir():
      raise ValueError(f"{workdir / name}: is a folder where the run writes a file; move it away")
  for name in RESULT_FOLDERS:
    if (workdir / name).exists() and not (workdir / name).is_dir():
      raise ValueError(f"{workdir / name}: is a file where the run keeps a folder; move it away")
  for folder in _numbered(workdir):
    names = {p.name for p in folder.iterdir()}
    if names and not names & _CHECKPOINT_ENTRIES:
      raise ValueError(f"{folder} is not a mejax checkpoint (it holds {sorted(names)[:5]}, none "
                       f"of {', '.join(ITEMS)}); move it out of {folder.parent}")


def set_aside_incomplete(workdir: pathlib.Path) -> None:
  """Sets aside (as damaged-<epoch>, with a warning) numbered entries of W/checkpoints that are
  files, or checkpoint folders lacking an item: orbax would skip or overwrite them."""
  folder = workdir / "checkpoints"
  if not folder.is_dir():
    return
  for entry in sorted(p for p in folder.iterdir() if p.name.isdigit()):
    if entry.is_dir():
      missing = [item for item in ITEMS if not (entry / item).is_dir()]
      problem = f"it lacks {', '.join(missing)}" if missing else None
    else:
      problem = "a file, not a checkpoint folder"
    if problem:
      log.warning("Checkpoint %s is incomplete (%s); moved to %s", entry, problem,
                  set_aside(entry))


def _read_json(path: pathlib.Path):
  """The JSON in `path`, or None when absent or unreadable."""
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return None


def _stored_config(workdir: pathlib.Path) -> tuple[dict | None, str]:
  """(the experiment config the workdir holds, where it was read): config.json, else the newest
  readable checkpoint's experiment record (config.json deleted or damaged)."""
  stored = _read_json(workdir / CONFIG_FILE)
  if isinstance(stored, dict):
    return stored, str(workdir / CONFIG_FILE)
  for folder in reversed(_numbered(workdir)):
    record = _read_json(folder / "experiment" / "metadata")
    if isinstance(record, dict) and isinstance(record.get("config"), dict):
      return record["config"], str(folder)
  return None, ""


def check_workdir(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> str:
  """What claiming `workdir` for this experiment would mean, without writing anything:
  'new' (nothing there), 'resume' (the same experiment), 'reclaim' (another experiment's config
  that never trained: no checkpoint). Raises ValueError naming the differing keys when the
  workdir holds another experiment that trained, or a foreign checkpoint folder."""
  check_foreign(workdir)
  stored, source = _stored_config(workdir)
  if stored is None:
    return "new"
  current = json.loads(config.to_json_best_effort())
  differences = _diff(_without_runtime_keys(stored), _without_runtime_keys(current))
  if not differences:
    return "resume"
  if not _numbered(workdir) and not (workdir / "metrics.json").exists():
    return "reclaim"
  raise ValueError(
      f"Workdir {workdir} holds a different experiment (read from {source}); refusing to "
      f"overwrite it. Differences ({len(differences)}): " + "; ".join(differences[:10]) +
      ". Use another --workdir.")


def claim_workdir(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> bool:
  """Checks (`check_workdir`), sets incomplete checkpoints aside, then writes config.json where
  it is missing, damaged or another experiment's that never trained. Returns True when the
  workdir already held this experiment (a resume)."""
  state = check_workdir(workdir, config)
  set_aside_incomplete(workdir)
  if state == "resume":
    repair_config(workdir, config)
    return True
  if state == "reclaim":
    log.warning("%s held the config of a run that never trained (no checkpoint); it now holds "
                "this experiment", workdir / CONFIG_FILE)
  _write_config(workdir, config)
  return False


def repair_config(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Rewrites the config.json of a workdir holding this experiment when it is missing or
  damaged (`check_workdir` found the experiment in its checkpoints)."""
  if not isinstance(_read_json(workdir / CONFIG_FILE), dict):
    log.warning("%s was missing or damaged; rewritten from the checkpoints' experiment",
                workdir / CONFIG_FILE)
    _write_config(workdir, config)


def _write_config(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  workdir.mkdir(parents=True, exist_ok=True)
  files.write_atomic(workdir / CONFIG_FILE,
                     json.dumps(json.loads(config.to_json_best_effort()), indent=2,
                                sort_keys=True))


def manager(workdir: pathlib.Path, max_to_keep: int = 2) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      (workdir / "checkpoints").absolute(),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))


# The layout of what `save` writes. 2: TrainState has a `constants` collection (per-fold constants
# such as STRCN-A's pixel selection, before in `batch_stats`) and the experiment record names its
# format. Runs of another format are refused with the reason, never misread.
FORMAT = 2


class IncompatibleCheckpoint(ValueError):
  """A checkpoint written by a mejax whose checkpoint layout this one cannot read."""


def experiment_record(config: ml_collections.ConfigDict, folds_json: dict, fold_ids: list[int],
                      lanes: list[int]) -> dict:
  """What a checkpoint stores beside the state, so that it alone is enough for analysis: the
  config, the folds with their sample ids, which folds were trained and the fold of every lane."""
  return {"format": FORMAT, "config": json.loads(config.to_json_best_effort()),
          "folds": folds_json, "fold_ids": list(fold_ids), "lanes": list(lanes)}


def save(mngr: ocp.CheckpointManager, epoch: int, state: Any, history: list[dict],
         experiment: dict) -> None:
  """Saves the fold-stacked state with the history and the experiment record."""
  with quiet():  # a failed save raises here; orbax's threads would log it dozens of times
    mngr.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             history=ocp.args.JsonSave(history),
                                             experiment=ocp.args.JsonSave(experiment)))
    mngr.wait_until_finished()


def read_experiment(mngr: ocp.CheckpointManager, epoch: int) -> dict:
  """The experiment record of checkpoint `epoch`; IncompatibleCheckpoint when its format is not
  this version's."""
  restored = mngr.restore(epoch, args=ocp.args.Composite(experiment=ocp.args.JsonRestore()))
  experiment = dict(restored["experiment"])
  found = experiment.get("format", 1)
  if found != FORMAT:
    where = pathlib.Path(mngr.directory) / str(epoch)
    reason = ("its state has no `constants` collection" if found == 1 else
              "it was written by a newer mejax")
    raise IncompatibleCheckpoint(
        f"{where}: checkpoint format {found}, but this mejax reads format {FORMAT} ({reason}). "
        "Analyse it with the mejax version that wrote it, or train it again in a new workdir.")
  return experiment


def first_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


@contextlib.contextmanager
def quiet():
  """Orbax's background threads log every failed read of a damaged checkpoint or failed write
  to a full disk (dozens of tracebacks); the error this module raises or logs says it."""
  _drop_closed_loop_reports()
  loggers = [logging.getLogger(name) for name in ("absl", "asyncio")]
  levels = [logger.level for logger in loggers]
  for logger in loggers:
    logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)


def _drop_closed_loop_reports() -> None:
  """Drops what tensorstore's I/O threads and orbax's tasks report after an orbax read or write
  failed, once its error was raised: "Event loop is closed" (unraisable, one traceback per
  thread) and asyncio's "exception was never retrieved" (one per task, at exit). Installed
  once; every other report goes where it went."""
  previous = sys.unraisablehook
  if getattr(previous, "mejax_drops_closed_loops", False):
    return

  def hook(unraisable):
    error = unraisable.exc_value
    if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
      previous(unraisable)

  hook.mejax_drops_closed_loops = True
  sys.unraisablehook = hook
  logging.getLogger("asyncio").addFilter(
      lambda record: "exception was never retrieved" not in str(record.msg))


def set_aside(folder: pathlib.Path) -> pathlib.Path:
  """Renames a damaged checkpoint folder to damaged-<epoch>[-k] beside it (kept for inspection,
  out of the way of the epoch's next save) and returns the new path."""
  target = folder.with_name(f"damaged-{folder.name}")
  k = 1
  while target.exists():
    k += 1
    target = folder.with_name(f"damaged-{folder.name}-{k}")
  folder.rename(target)
  return target


def restore_latest(mngr: ocp.CheckpointManager, abstract_state: Any, *,
                   fall_back: bool = True):
  """(epoch, state, history) of the newest intact checkpoint, or None when there is none.

  `abstract_state` (from `jax.eval_shape`, with shardings) fixes the tree and where leaves go.
  A checkpoint that cannot be read is named in a warning and, with `fall_back`, set aside as
  damaged-<epoch> (`set_aside`, never deleted) and the previous one tried; without it (runs of
  several processes, which must all agree), ValueError names it. IncompatibleCheckpoint (another
  mejax version's format) is raised as it is.
  """
  directory = pathlib.Path(mngr.directory)
  damaged = []
  for epoch in sorted(mngr.all_steps(), reverse=True):
    folder = directory / str(epoch)
    try:
      read_experiment(mngr, epoch)
      with quiet():
        restored = mngr.restore(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), history=ocp.args.JsonRestore()))
    except IncompatibleCheckpoint:
      raise
    except Exception as e:  # noqa: BLE001  any unreadable checkpoint: named, set aside
      if not fall_back:
        raise ValueError(f"checkpoint {folder} is damaged ({first_line(e)}); move it aside "
                         f"(mv {folder} {folder.with_name('damaged-' + folder.name)}) and run "
                         "again to resume from the previous checkpoint") from None
      aside = set_aside(folder)
      log.warning("Checkpoint %s is damaged (%s); moved to %s", folder, first_line(e), aside)
      damaged.append(epoch)
      mngr.reload()
      continue
    if damaged:
      log.warning("Resuming from epoch %d, the newest intact checkpoint in %s", epoch, directory)
    return epoch, restored["state"], list(restored["history"])
  if damaged:
    log.warning("No intact checkpoint in %s: training starts from the beginning", directory)
  return None


def restore(mngr: ocp.CheckpointManager, epoch: int, abstract_state: Any):
  """(state, history) of checkpoint `epoch`, laid out as `abstract_state` says."""
  restored = mngr.restore(epoch, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), history=ocp.args.JsonRestore()))
  return restored["state"], list(restored["history"])


def restore_fields(mngr: ocp.CheckpointManager, epoch: int, fields: dict[str, Any]):
  """({field: subtree}, history) of checkpoint `epoch`, reading only the state's `fields` (e.g.
  'params', 'batch_stats'), each laid out as its abstract subtree says."""
  present = {name: tree for name, tree in fields.items() if jax.tree_util.tree_leaves(tree)}
  restore_args = jax.tree_util.tree_map(lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding),
                                        present)
  restored = mngr.restore(epoch, args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(item=present, restore_args=restore_args,
                                   partial_restore=True),
      history=ocp.args.JsonRestore()))
  state = {name: restored["state"][name] if name in present else tree
           for name, tree in fields.items()}
  return state, list(restored["history"])


def abstract_with_sharding(tree: Any, sharding) -> Any:
  return jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
