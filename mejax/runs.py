"""A run in a workdir as an object: restore it on any device count and backend, apply its models.

    run = runs.load("runs/smoke")                     # the state its results were reported from
    clips, view = run.data()                          # its clips and their view
    logits, features = run.apply(run.fold_names[0], view[:8])

A checkpoint stores its experiment (config, folds with sample ids, the fold of every lane), so
the state's tree is rebuilt from the config alone and restored onto this process's first device,
whatever device count or backend wrote it (8 -> 1, GPU -> CPU, 1 -> 8). Only the variables asked
for are read (not the optimiser moments); padded lanes are dropped.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from mejax import checkpoints
from mejax import protocols
from mejax import sweep as sweep_lib
from mejax.data import labels as labels_lib
from mejax.data import view_cache
from mejax.data import views
from mejax.models import introspect

# 'reported': the state the run's results came from (its best inner-validation state where it
# kept one, else its last); 'final': the last state; 'best': the best inner-validation state.
SELECTIONS = ("reported", "final", "best")


class RunError(ValueError):
  """A workdir that cannot be restored as asked; the message names the workdir and why."""


@dataclasses.dataclass
class Run:
  """A restored run: its experiment, history and every trained fold's variables (host numpy)."""
  workdir: pathlib.Path
  config: ml_collections.ConfigDict
  folds: protocols.Folds
  fold_names: list[str]        # the folds this run trained
  history: list[dict]
  epoch: int                   # the checkpoint restored
  selection: str               # 'final' or 'best': which state `variables` hold
  reported: str                # 'final' or 'best': the state the run's results came from
  finished: bool               # the run wrote its results and this is its last checkpoint
  class_names: tuple[str, ...]
  model: object
  variables: dict[str, dict]   # fold name -> {'params', 'batch_stats', 'constants'}
  notes: list[str]             # what a reader of an analysis must know (unfinished run, ...)
  # The whole TrainState of the trained folds (host numpy, padded lanes dropped): only with
  # load(..., whole_state=True).
  state: object = None

  def __post_init__(self):
    self.to_input = sweep_lib.input_transform(self.config.data)
    self.input_shape = views.view_shape(self.config.data)
    self._head = None
    self._apply = jax.jit(self._forward)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def fold_variables(self, fold: str) -> dict:
    if fold not in self.variables:
      raise RunError(f"{self.workdir}: no fold {fold!r}; its folds: "
                     f"{', '.join(self.fold_names[:20])}"
                     + (" ..." if len(self.fold_names) > 20 else ""))
    return self.variables[fold]

  @property
  def head(self) -> str:
    """The path of the model's classification head (`introspect.head_path`)."""
    if self._head is None:
      fold = self.variables[self.fold_names[0]]
      self._head = introspect.head_path(self.model, fold, np.zeros((1,) + self.input_shape,
                                                                   np.float32), self.num_classes)
    return self._head

  def _forward(self, variables, clips_uint8):
    x = self.to_input(clips_uint8).astype(sweep_lib.compute_dtype(self.config))
    return introspect.apply_with_features(self.model, variables, x, self.head)

  def check_clips(self, clips_uint8: np.ndarray) -> None:
    shape = tuple(np.shape(clips_uint8)[1:])
    if np.ndim(clips_uint8) != 5 or shape != tuple(self.input_shape):
      raise RunError(f"{self.workdir}: clips of shape {tuple(np.shape(clips_uint8))} given; this "
                     f"run's model takes (N, {', '.join(map(str, self.input_shape))}) uint8 "
                     "views (data.view, num_frames, size, grey of its config)")
    if np.asarray(clips_uint8).dtype != np.uint8:
      raise RunError(f"{self.workdir}: clips of dtype {np.asarray(clips_uint8).dtype} given; "
                     "views are uint8")

  def apply(self, fold: str, clips_uint8: np.ndarray, batch_size: int | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """(logits [N, C], penultimate features [N, D]) of fold `fold`'s model on uint8 views
    [N, T, H, W, C], with the input transform the run trained with."""
    self.check_clips(clips_uint8)
    variables = self.fold_variables(fold)
    _ = self.head  # found before tracing
    batch = batch_size or self.config.eval.batch_size
    logits, features = [], []
    for start in range(0, len(clips_uint8), batch):
      part = np.asarray(clips_uint8[start:start + batch])
      padded = np.concatenate([part, np.repeat(part[:1], batch - len(part), 0)]) \
          if len(part) < batch else part  # one compiled shape for every chunk
      out_logits, out_features = jax.device_get(self._apply(variables, padded))
      logits.append(out_logits[:len(part)])
      features.append(out_features[:len(part)])
    if not logits:
      return np.zeros((0, self.num_classes), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(logits), np.concatenate(features)

  def data(self, data_dir: str | None = None):
    """(ClipSet, view) of the run's data: its view cache, else its TFRecords; checked to be the
    clips its folds were made of. `data_dir` replaces the config's (a copied data dir)."""
    data = self.config.data.copy_and_resolve_references()
    if data_dir:
      data.data_dir = str(data_dir)
    try:
      clips, view = view_cache.load_or_build(data, write=True)
    except (FileNotFoundError, ValueError) as e:
      raise RunError(f"{self.workdir}: its data cannot be loaded from {data.data_dir} ({e}). "
                     "Pass the data dir holding its datasets or their mejax_views/ cache "
                     "(--data_dir).") from None
    try:
      self.folds.check_matches(clips)
    except ValueError as e:
      raise RunError(f"{self.workdir}: the data in {data.data_dir} is not the data this run "
                     f"was trained on ({e})") from None
    return clips, view

  def test_indices(self, fold: str) -> np.ndarray:
    return np.flatnonzero(self.folds.test[self.folds.fold_index(fold)])


def _manager(workdir: pathlib.Path):
  """A manager that never creates or changes anything in the workdir."""
  return ocp.CheckpointManager((workdir / "checkpoints").absolute(),
                               options=ocp.CheckpointManagerOptions(create=False,
                                                                    read_only=True))


def _damaged(workdir: pathlib.Path, epoch: int, saved: list[int], error: Exception
             ) -> RunError:
  others = [e for e in saved if e != epoch]
  hint = (f"another saved epoch can be read with --epoch ({others})" if others else
          "the run has no other checkpoint")
  return RunError(f"checkpoint {workdir / 'checkpoints' / str(epoch)} is damaged "
                  f"({checkpoints.first_line(error)}); {hint}")


def load(workdir, epoch: int | None = None, select: str = "reported",
         whole_state: bool = False) -> Run:
  """The run in `workdir` at checkpoint `epoch` (default: its newest).

  select: 'reported' (default), 'final' or 'best' (see SELECTIONS). whole_state: also read the
  rest of the state (optimiser moments, learning-rate scale, early-stopping counters) into
  `Run.state`. Raises RunError naming the workdir and the reason (no checkpoint, unknown epoch,
  incompatible format, no best state).
  """
  workdir = pathlib.Path(workdir)
  if select not in SELECTIONS:
    raise RunError(f"select {select!r}; known: {SELECTIONS}")
  if not (workdir / "checkpoints").is_dir():
    what = "no such directory" if not workdir.exists() else "no checkpoints/ folder"
    raise RunError(f"{workdir}: not a mejax run ({what})")
  mngr = _manager(workdir)
  saved = sorted(mngr.all_steps())
  if not saved:
    raise RunError(f"{workdir}: no checkpoint in {workdir / 'checkpoints'} (the run never "
                   "finished an epoch)")
  epoch = saved[-1] if epoch is None else int(epoch)
  if epoch not in saved:
    raise RunError(f"{workdir}: no checkpoint of epoch {epoch}; saved epochs: {saved}")
  damaged = lambda e: _damaged(workdir, epoch, saved, e)
  try:
    with checkpoints.quiet():
      experiment = checkpoints.read_experiment(mngr, epoch)
  except checkpoints.IncompatibleCheckpoint as e:
    raise RunError(str(e)) from None
  except Exception as e:  # noqa: BLE001  any unreadable checkpoint is named
    raise damaged(e) from None
  config = ml_collections.ConfigDict(experiment["config"])
  folds = protocols.Folds.from_json(experiment["folds"])
  fold_ids, lanes = list(experiment["fold_ids"]), list(experiment["lanes"])
  class_names = labels_lib.get_label_map(config.data.label_map).class_names
  keep_best = sweep_lib.keeps_best(config, folds.val[lanes])
  if select == "best" and not keep_best:
    raise RunError(f"{workdir}: the run kept no best state (it needs early stopping with an "
                   "inner validation set and train.restore_best); use select='final'")
  use_best = keep_best and select != "final"
  model, template = sweep_lib.state_template(config, len(class_names),
                                             views.view_shape(config.data), len(lanes),
                                             keep_best)
  device = jax.local_devices()[0]
  here = jax.sharding.SingleDeviceSharding(device)
  read = lambda tree: jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=here), tree)
  wanted = {"params": "best_params" if use_best else "params",
            "batch_stats": "best_batch_stats" if use_best else "batch_stats",
            "constants": "constants"}
  try:
    with checkpoints.quiet():
      if whole_state:
        state, history = checkpoints.restore(mngr, epoch, read(template))
        fields = {field: getattr(state, field) for field in wanted.values()}
      else:  # the optimiser moments and the other copy are never read
        fields, history = checkpoints.restore_fields(
            mngr, epoch, {field: read(getattr(template, field)) for field in wanted.values()})
  except Exception as e:  # noqa: BLE001  any unreadable checkpoint is named
    raise damaged(e) from None
  host = {name: jax.device_get(fields[field]) for name, field in wanted.items()}
  variables = {}
  for lane, fold_id in enumerate(fold_ids):  # lanes beyond the trained folds are padding
    variables[folds.names[fold_id]] = jax.tree_util.tree_map(lambda x: np.asarray(x[lane]), host)
  real = len(fold_ids)
  whole = (jax.tree_util.tree_map(lambda x: np.asarray(x)[:real], jax.device_get(state))
           if whole_state else None)
  finished = (workdir / "metrics.json").exists() and epoch == saved[-1]
  notes = []
  if not finished:
    notes.append(f"{workdir} holds no finished run (no metrics.json, or a later checkpoint "
                 f"exists): this is its checkpoint of epoch {epoch} of "
                 f"{config.train.num_epochs}")
  return Run(workdir=workdir, config=config, folds=folds,
             fold_names=[folds.names[f] for f in fold_ids], history=history, epoch=epoch,
             selection="best" if use_best else "final",
             reported="best" if keep_best else "final", finished=finished,
             class_names=tuple(class_names), model=model, variables=variables, notes=notes,
             state=whole)


def read_metrics(workdir: pathlib.Path) -> dict | None:
  """metrics.json of a workdir, or None when absent or damaged."""
  path = pathlib.Path(workdir) / "metrics.json"
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return None
