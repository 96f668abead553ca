"""Checkpoints of the stacked fold state with orbax: save per epoch, resume, restore.

A workdir holds one experiment: `config.json` (what it is), `folds.json` (fold definitions and
the sample ids they index), and `checkpoints/<epoch>/` with the fold-stacked TrainState, the
per-epoch history and the experiment record (config, folds, the fold of every lane), so that a
checkpoint alone is enough to restore the run anywhere (`mejax.runs`). A workdir holding a
different experiment is refused, never overwritten.
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

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


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
  if isinstance(a, dict) and isinstance(b, dict):
    out = []
    for k in sorted(set(a) | set(b)):
      out += _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{prefix}{k}.")
    return out
  return [] if a == b else [f"{prefix[:-1]}: workdir has {a!r}, config has {b!r}"]


def claim_workdir(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> bool:
  """Writes config.json, or checks that the workdir's experiment is this one.

  Returns True when the workdir already held this experiment (a resume).
  Raises ValueError naming the differing keys when it holds another experiment.
  """
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / "config.json"
  current = json.loads(config.to_json_best_effort())
  if path.exists():
    stored = json.loads(path.read_text())
    differences = _diff(_without_runtime_keys(stored), _without_runtime_keys(current))
    if differences:
      raise ValueError(
          f"Workdir {workdir} holds a different experiment; refusing to overwrite it. "
          f"Differences ({len(differences)}): " + "; ".join(differences[:10]) +
          ". Use another --workdir.")
    return True
  path.write_text(json.dumps(current, indent=2, sort_keys=True))
  return False


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


def restore_latest(mngr: ocp.CheckpointManager, abstract_state: Any):
  """(epoch, state, history) of the newest checkpoint, or None when there is none.

  `abstract_state` (from `jax.eval_shape`, with shardings) fixes the tree and where leaves go.
  """
  epoch = mngr.latest_step()
  if epoch is None:
    return None
  read_experiment(mngr, epoch)
  restored = mngr.restore(epoch, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), history=ocp.args.JsonRestore()))
  return epoch, restored["state"], list(restored["history"])


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
