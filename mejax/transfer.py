"""config.init_from: the variables every fold of a run starts from, instead of a random draw.

init_from names either
- a `python -m mejax.convert` folder (torchvision R3D-18 weights): the model's R3D-18 layers take
  them (see `mejax.models.convert.pretrained_leaves`); or
- a mejax workdir (another run, e.g. the macro-expression pre-training of Islam et al.): one of
  its folds at one checkpoint, restored with `mejax.runs.load`:
    init_from_fold    the fold ('' : the run's only fold, as a hold-out run has);
    init_from_epoch   the checkpoint (0 : the newest);
    init_from_select  'reported' (the state its results came from), 'final' or 'best';
    init_from_parts   which variables to carry, as module paths ('backbone',
                      'autoencoder/encoder', 'autoencoder/decoder', 'head'); () : every variable
                      whose shape matches, with a fresh head when the class count differs.
  Every fold of the new run starts from the same restored variables; per-fold constants are
  recomputed from each fold's own training clips. Any other mismatch of names or shapes is
  refused, naming the variable and both shapes.
"""

from __future__ import annotations

import logging
import pathlib

import jax
import numpy as np

from mejax.models import introspect

log = logging.getLogger(__name__)

CARRIED = ("params", "batch_stats")  # constants are per fold: recomputed, never carried


def initial_variables(config) -> dict[tuple[str, ...], np.ndarray] | None:
  """{(collection, *path): array} that config.init_from sets in every fold, or None. Checked
  before a run claims its workdir: a source that does not fit leaves nothing behind."""
  path = config.get("init_from", "")
  if not path:
    return None
  from mejax import models
  from mejax import sweep
  from mejax.data import labels as labels_lib
  from mejax.data import views
  model = models.from_config(config.model,
                             labels_lib.get_label_map(config.data.label_map).num_classes,
                             sweep.compute_dtype(config))
  sample_input = np.zeros((1,) + views.view_shape(config.data), np.float32)
  source = pathlib.Path(path)
  from mejax import convert
  if (source / convert.WEIGHTS_INFO).exists():
    return _from_converted(source, model, sample_input)
  if (source / "checkpoints").is_dir():
    return _from_run(config, source, model, sample_input)
  raise ValueError(f"init_from {path}: neither a mejax workdir (no checkpoints/ folder) nor a "
                   f"`python -m mejax.convert` folder (no {convert.WEIGHTS_INFO})")


def _from_converted(path: pathlib.Path, model, sample_input):
  from mejax import convert
  from mejax.models import convert as convert_lib
  loaded, info = convert.load(path)
  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), sample_input, train=False))
  leaves, notes = convert_lib.pretrained_leaves(abstract, loaded)
  for note in notes:
    log.info("init_from %s: %s", path, note)
  log.info("init_from %s (%s from %s): %d arrays imported", path, info["architecture"],
           info["source"], len(leaves))
  return leaves


def _from_run(config, path: pathlib.Path, model, sample_input):
  from mejax import runs
  try:
    run = runs.load(path, epoch=config.get("init_from_epoch", 0) or None,
                    select=config.get("init_from_select", "reported"))
  except runs.RunError as e:
    raise ValueError(f"init_from: {e}") from None
  fold = config.get("init_from_fold", "")
  if not fold:
    if len(run.fold_names) != 1:
      shown = ", ".join(run.fold_names[:5]) + (" ..." if len(run.fold_names) > 5 else "")
      raise ValueError(f"init_from {path}: the run has {len(run.fold_names)} folds ({shown}); "
                       "name one with init_from_fold")
    fold = run.fold_names[0]
  try:
    source = run.fold_variables(fold)
  except runs.RunError as e:
    raise ValueError(f"init_from: {e}") from None
  target = jax.eval_shape(lambda: model.init(jax.random.key(0), sample_input, train=False))
  head = introspect.head_path(model, target, sample_input,
                              num_classes=_num_classes(model, target, sample_input))
  leaves, notes = carried_variables(
      source, target, parts=tuple(config.get("init_from_parts", ()) or ()), head=head,
      where=f"init_from {path} (fold {fold}, epoch {run.epoch}, {run.selection} state)")
  for note in notes:
    log.info("%s", note)
  log.info("init_from %s: fold %s, epoch %d (%s state): %d arrays carried", path, fold,
           run.epoch, run.selection, len(leaves))
  return leaves


def _num_classes(model, variables, sample_input) -> int:
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, sample_input)
  return int(out.shape[-1])


def _under(path: tuple[str, ...], part: str) -> bool:
  prefix = tuple(p for p in part.split("/") if p)
  return path[1:1 + len(prefix)] == prefix


def carried_variables(source: dict, target, *, parts: tuple[str, ...], head: str, where: str
                      ) -> tuple[dict[tuple[str, ...], np.ndarray], list[str]]:
  """({(collection, *path): array} of `source` to set in a model whose variables are `target`,
  notes). See the module docstring for `parts` and the default."""
  have = {k: v for k, v in _flat(source).items() if k[0] in CARRIED}
  want = {k: v for k, v in introspect.variable_shapes(target).items() if k[0] in CARRIED}
  name = lambda key: "/".join(key)
  head_path = tuple(head.split("/"))
  in_head = lambda key: key[1:1 + len(head_path)] == head_path
  notes = []
  if parts:
    unknown = [p for p in parts if not any(_under(k, p) for k in set(have) | set(want))]
    if unknown:
      modules = sorted({k[1] for k in want})
      raise ValueError(f"{where}: init_from_parts {unknown} name no variables; the model's "
                       f"top-level modules: {modules}")
    keys = {k for k in set(have) | set(want) if any(_under(k, p) for p in parts)}
  else:
    keys = set(have) | set(want)
    mismatched_head = [k for k in keys if in_head(k) and k in have and k in want
                       and np.shape(have[k]) != want[k]]
    if mismatched_head:  # another class count: the new head starts fresh
      notes.append(f"{where}: head {head} left freshly initialised ("
                   + "; ".join(f"{name(k)} {tuple(np.shape(have[k]))} -> {want[k]}"
                               for k in sorted(mismatched_head)) + ")")
      keys -= {k for k in keys if in_head(k)}
  missing = sorted(k for k in keys if k not in have)
  extra = sorted(k for k in keys if k not in want)
  shapes = sorted(k for k in keys if k in have and k in want and np.shape(have[k]) != want[k])
  problems = ([f"{name(k)}: the model has {want[k]}, the source has none" for k in missing]
              + [f"{name(k)}: the source has {tuple(np.shape(have[k]))}, the model has none"
                 for k in extra]
              + [f"{name(k)}: the model has {want[k]}, the source has "
                 f"{tuple(np.shape(have[k]))}" for k in shapes])
  if problems:
    raise ValueError(f"{where} does not fit the model ({len(problems)} variable(s)): "
                     + "; ".join(problems[:8]) + (" ..." if len(problems) > 8 else ""))
  if not keys:
    raise ValueError(f"{where}: no variable to carry")
  return {k: np.asarray(have[k]) for k in sorted(keys)}, notes


def _flat(variables: dict) -> dict[tuple[str, ...], np.ndarray]:
  import flax
  return {(collection,) + path: value
          for collection, tree in variables.items()
          for path, value in flax.traverse_util.flatten_dict(dict(tree)).items()}
