"""train_and_evaluate(config, workdir): every fold of a protocol trained at once, then evaluated.

ClipSet -> view -> folds -> device-resident inputs -> fold-stacked steps -> pooled predictions ->
metrics, checkpoints and reports in the workdir. A killed run resumes from its last checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from mejax import analyze
from mejax import checkpoints
from mejax import distributed
from mejax import memory
from mejax import metrics as metrics_lib
from mejax import models
from mejax import protocols
from mejax import sharding
from mejax import steps
from mejax import summaries
from mejax.data import clipset as clipset_lib
from mejax.data import on_device
from mejax.data import view_cache
from mejax.data import views

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Experiment:
  """Everything the loop needs that is fixed before the first step (host side)."""
  clips: clipset_lib.ClipSet
  inputs: np.ndarray           # uint8 view [N, T, S, S, C]
  folds: protocols.Folds
  fold_ids: list[int]          # folds trained in this run (indices into folds)
  warnings: list[str]
  # Training-only variants of the view [K, N, T, S, S, C] (data.train_magnify_alphas): a train
  # step draws one per sample; evaluation and per-fold constants use `inputs`.
  train_inputs: np.ndarray | None = None

  @property
  def folds_json(self) -> dict:
    """folds.json: fold names with the sample ids of their train / val / test sets."""
    return json.loads(json.dumps(self.folds.to_json(self.clips.uid.tolist())))


def prepare(config: ml_collections.ConfigDict) -> Experiment:
  """Loads the data and its view (from the view cache when one matches: no TensorFlow needed),
  builds the folds and checks the classes of every fold."""
  clips, inputs, train_inputs = view_cache.load_or_build_with_variants(
      config.data, write=distributed.is_writer())
  return prepare_view(clips, inputs, config, train_inputs)


def prepare_clips(clips: clipset_lib.ClipSet, config: ml_collections.ConfigDict) -> Experiment:
  return prepare_view(clips, view_cache.make_view(clips, config.data), config,
                      view_cache.make_variants(clips, config.data))


def prepare_view(clips: clipset_lib.ClipSet, inputs: np.ndarray,
                 config: ml_collections.ConfigDict,
                 train_inputs: np.ndarray | None = None) -> Experiment:
  folds = protocols.make_folds(clips, config.protocol)
  fold_ids = list(config.train.only_folds) or list(range(len(folds.names)))
  unknown = [f for f in fold_ids if not 0 <= f < len(folds.names)]
  if unknown:
    raise ValueError(f"train.only_folds {unknown} out of range: the protocol has "
                     f"{len(folds.names)} folds")
  warnings = []
  counts = on_device.class_counts(clips.label, folds.train, clips.num_classes)
  for f in fold_ids:
    for c in np.flatnonzero(counts[f] == 0):
      warnings.append(f"Fold {folds.names[f]} has no training sample of class "
                      f"{clips.class_names[c]!r}: it gets zero sampling and loss weight")
  for w in warnings:
    log.warning(w)
  return Experiment(clips, inputs, folds, fold_ids, warnings, train_inputs)


def _check_config(config: ml_collections.ConfigDict) -> None:
  if config.model.name not in models.MODELS:
    raise ValueError(f"Unknown model {config.model.name!r} (config key model.name); known: "
                     f"{sorted(models.MODELS)}")
  needs_val = config.train.plateau_patience > 0 or config.train.early_stopping_patience > 0
  has_val = config.protocol.val_subjects > 0 or config.protocol.val_fraction > 0
  if needs_val and not has_val:
    raise ValueError("train.plateau_patience / train.early_stopping_patience need an inner "
                     "validation set: set protocol.val_subjects or protocol.val_fraction")
  _optimizer(config, steps_per_epoch=1)  # an unknown optimizer / schedule fails before any write
  if config.train.get("loss", "cross_entropy") not in steps.LOSSES:
    raise ValueError(f"Unknown train.loss {config.train.loss!r}; known: {steps.LOSSES}")
  if config.train.fold_strategy not in steps.STRATEGIES + ("auto",):
    raise ValueError(f"Unknown train.fold_strategy {config.train.fold_strategy!r}; known: "
                     f"{steps.STRATEGIES + ('auto',)}")
  if config.train.get("fold_chunk", 0) < 0:
    raise ValueError(f"train.fold_chunk={config.train.fold_chunk} must be >= 0 (0: sized from "
                     "device memory)")
  compute_dtype(config)  # an unknown model.dtype fails before any write
  smooth = config.train.get("smooth_probability", 0.0)
  if not 0 <= smooth <= 1 or (smooth and not config.train.get("smooth_sigma", 1.0) >= 0.5):
    raise ValueError(f"train.smooth_probability={smooth} must be in [0, 1] and "
                     f"train.smooth_sigma={config.train.get('smooth_sigma', 1.0)} >= 0.5 "
                     "(sigma ~ U(0.5, smooth_sigma))")
  if config.train.batch_size % config.mesh.data:
    raise ValueError(f"train.batch_size={config.train.batch_size} must be a multiple of "
                     f"mesh.data={config.mesh.data}")


def compute_dtype(config: ml_collections.ConfigDict):
  """model.dtype: the computation dtype ('float32', or 'bfloat16' on GPU); parameters, optimiser
  state and logits stay float32."""
  name = config.model.get("dtype", "float32")
  if name not in ("float32", "bfloat16", "float16"):
    raise ValueError(f"Unknown model.dtype {name!r}; known: 'float32', 'bfloat16', 'float16'")
  return jnp.dtype(name)


NORMALISATIONS = ("kinetics", "unit")


def input_transform(data: ml_collections.ConfigDict) -> on_device.InputTransform:
  """uint8 view -> model input on device, with constants that never depend on the data.

  data.normalisation 'kinetics' (default): the Kinetics-400 mean/std per RGB channel (their
  channel means for grey views, repeated over stacked regions); 'unit': x / 127.5 - 1 (flow
  fields, whose 128 is zero motion). Optionally relative to the first frame.
  """
  channels = views.view_shape(data)[-1]
  normalisation = data.get("normalisation", "kinetics")
  if normalisation == "unit":
    mean, std = (0.5,) * channels, (0.5,) * channels
  elif normalisation == "kinetics":
    rgb = not data.grey and data.view != "flow"
    mean, std = ((views.KINETICS_MEAN, views.KINETICS_STD) if rgb else
                 ((float(np.mean(views.KINETICS_MEAN)),), (float(np.mean(views.KINETICS_STD)),)))
    mean, std = mean * (channels // len(mean)), std * (channels // len(std))
  else:
    raise ValueError(f"Unknown data.normalisation {normalisation!r}; known: {NORMALISATIONS}")
  return on_device.InputTransform(tuple(map(float, mean)), tuple(map(float, std)),
                                  data.relative_to_first_frame)


def _write_atomic(path: pathlib.Path, text: str) -> None:
  """Whole file or nothing: an interrupted write never leaves a truncated result."""
  with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
    f.write(text)
  os.replace(f.name, path)


def _write_folds(workdir: pathlib.Path, exp: Experiment, resuming: bool) -> None:
  text = json.dumps(exp.folds_json, indent=1)
  path = workdir / "folds.json"
  if resuming and path.exists() and path.read_text() != text:
    raise ValueError(f"{path} defines other folds or samples than this run's data: the dataset "
                     "changed since the run started; use another --workdir")
  if not distributed.is_writer():  # every process checks the folds; process 0 writes them
    return
  _write_atomic(path, text)
  skipped = {"count": len(exp.clips.dropped), "samples": exp.clips.dropped}
  _write_atomic(workdir / "skipped_samples.json", json.dumps(skipped, indent=1))


def _softmax(logits: np.ndarray) -> np.ndarray:
  z = logits - logits.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


class _Evaluator:
  """Scores index sets ([F, M] per fold) with every fold's own parameters, in fixed chunks."""

  def __init__(self, eval_step, index_lists, chunk):
    self.idx, self.valid = steps.gather_padded(index_lists, multiple=chunk)
    self.chunk = chunk
    self.eval_step = eval_step

  def logits(self, state, inputs, fold_sharding) -> np.ndarray:
    out = []
    for start in range(0, self.idx.shape[1], self.chunk):
      idx = jax.device_put(self.idx[:, start:start + self.chunk], fold_sharding)
      out.append(distributed.to_host(self.eval_step(state, idx, inputs)))
    return np.concatenate(out, axis=1)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains every fold of the protocol at once and writes the results into `workdir`.

  Returns the evaluation report (the content of metrics.json's "report").
  """
  _check_config(config)
  workdir = pathlib.Path(workdir)
  # Process 0 claims the workdir; the others wait for it and share its answer (or its failure).
  resuming = bool(distributed.on_writer(lambda: checkpoints.claim_workdir(workdir, config),
                                        "claiming the workdir"))
  metrics_path = workdir / "metrics.json"
  if resuming and metrics_path.exists():
    done = json.loads(metrics_path.read_text())
    if distributed.is_writer():
      print(f"{workdir} holds a finished run of this experiment; its results:")
      print(metrics_lib.format_result_table(done["report"]))
    return done["report"]

  exp = prepare(config)
  _write_folds(workdir, exp, resuming)
  clips, folds = exp.clips, exp.folds
  num_classes = clips.num_classes

  devices = distributed.mesh_devices(config.mesh.num_devices)
  mesh = sharding.make_mesh(config.mesh.data, devices)
  fold_sh, repl = sharding.fold_sharded(mesh), sharding.replicated(mesh)
  # Pad the fold axis to fill the mesh; padded lanes repeat the first fold and are discarded.
  lanes = exp.fold_ids + [exp.fold_ids[0]] * (sharding.padded_fold_count(len(exp.fold_ids), mesh)
                                              - len(exp.fold_ids))
  train_mask, val_mask, test_mask = folds.train[lanes], folds.val[lanes], folds.test[lanes]
  counts = on_device.class_counts(clips.label, train_mask, num_classes)
  loss_weights = (on_device.inverse_frequency_weights(counts) if config.train.class_weighted_loss
                  else np.ones_like(counts, np.float32))
  fold_data = steps.FoldData(
      fold_key=jnp.stack([jax.random.fold_in(jax.random.PRNGKey(config.seed), f) for f in lanes]),
      sample_probs=on_device.sampling_probabilities(clips.label, train_mask, counts,
                                                    config.train.balanced_sampling),
      loss_weights=loss_weights)
  fold_data = jax.device_put(fold_data, fold_sh)
  inputs = jax.device_put(exp.inputs, repl)
  variants = exp.train_inputs is not None
  train_inputs = jax.device_put(exp.train_inputs, repl) if variants else inputs
  labels = jax.device_put(clips.label.astype(np.int32), repl)

  dtype = compute_dtype(config)
  model = models.from_config(config.model, num_classes, dtype)
  largest_train = int(train_mask.sum(1).max())
  steps_per_epoch = config.train.steps_per_epoch or math.ceil(largest_train /
                                                              config.train.batch_size)
  tx = _optimizer(config, steps_per_epoch)
  has_val = bool(val_mask.any())
  plateau = ((config.train.plateau_patience, config.train.plateau_factor,
              config.train.plateau_min_scale) if config.train.plateau_patience > 0 else None)
  early_stopping = config.train.early_stopping_patience or None
  keep_best = bool(early_stopping and config.train.restore_best and has_val)
  sample_input = jnp.zeros((1,) + exp.inputs.shape[1:], jnp.float32)
  pretrained = _pretrained(config, model, sample_input)
  init = jax.jit(lambda keys, imported: steps.init_state(model, tx, keys, sample_input, keep_best,
                                                         imported),
                 out_shardings=fold_sh)
  abstract_state = jax.eval_shape(init, fold_data.fold_key, pretrained)
  # Refuse a sweep whose resident state cannot fit before anything runs (numbers in the error).
  folds_per_device = len(lanes) // mesh.shape[sharding.FOLD]
  # Measured on this process's device, then the least over processes: all must pick one chunk.
  free_before = distributed.min_over_processes(memory.device_free_bytes(
      distributed.local_mesh_device(devices), memory.num_host_devices()))
  state_per_device = memory.tree_bytes(abstract_state) // mesh.shape[sharding.FOLD]
  data_per_device = (exp.inputs.nbytes + (exp.train_inputs.nbytes if variants else 0)
                     + memory.tree_bytes(fold_data) // mesh.shape[sharding.FOLD])
  memory.check_resident_fits(state_per_device, data_per_device, free_before, folds_per_device)

  mngr = checkpoints.manager(workdir)
  experiment = {"config": json.loads(config.to_json_best_effort()), "folds": exp.folds_json,
                "fold_ids": exp.fold_ids, "lanes": lanes}
  abstract = checkpoints.abstract_with_sharding(abstract_state, fold_sh)
  restored = checkpoints.restore_latest(mngr, abstract)
  if restored is not None:
    start_epoch, state, history = restored
    log.info("Resuming %s from epoch %d", workdir, start_epoch)
  else:
    start_epoch, state, history = 0, init(fold_data.fold_key, pretrained), []
    state = _per_fold_constants(state, exp.inputs, train_mask, fold_sh)

  to_input = input_transform(config.data)
  strategy = steps.resolve_strategy(config.train.fold_strategy, devices[0].platform, mesh.size)

  def compile_train_step(chunk):
    step = steps.make_train_step(
        model, tx, batch_size=config.train.batch_size, to_input=to_input, flip=config.train.flip,
        rotate_degrees=config.train.rotate_degrees, mesh=mesh, strategy=strategy,
        fold_chunk=chunk, compute_dtype=dtype, loss=config.train.get("loss", "cross_entropy"),
        frame_subsets=tuple(config.train.get("frame_subsets", ())), view_variants=variants,
        smoothing=(config.train.get("smooth_probability", 0.0),
                   config.train.get("smooth_sigma", 1.0)))
    if not hasattr(step, "lower"):  # 'loop' (a Python loop of jitted calls), or a wrapped step
      return step
    return step.lower(state, fold_data, train_inputs, labels).compile()

  if strategy == "loop":  # one fold's program at a time: no chunk to choose
    fold_chunk, train_step = 1, compile_train_step(1)
  else:
    fold_chunk, train_step, step_need = memory.choose_fold_chunk(
        compile_train_step, folds_per_device, free_before,
        requested=config.train.get("fold_chunk", 0),
        resident_bytes=state_per_device + data_per_device)
    log.info("Fold execution: %s", memory.Plan(folds_per_device, fold_chunk, state_per_device,
                                               data_per_device, step_need,
                                               free_before).describe())
  eval_current = steps.make_eval_step(model, to_input=to_input, mesh=mesh, strategy=strategy,
                                      fold_chunk=fold_chunk, compute_dtype=dtype)
  chunk = config.eval.batch_size
  test_indices = [np.flatnonzero(m) for m in test_mask]
  test_eval = _Evaluator(eval_current, test_indices, chunk)
  val_eval = _Evaluator(eval_current, [np.flatnonzero(m) for m in val_mask], chunk)
  # One call per epoch for every fold's validation loss, not one host round trip per fold.
  val_losses = jax.jit(jax.vmap(steps.weighted_cross_entropy))
  val_labels = clips.label[val_eval.idx]

  real = len(exp.fold_ids)
  names = [folds.names[f] for f in exp.fold_ids]
  num_epochs = config.train.num_epochs
  writer = (summaries.ScalarWriter(workdir / "tensorboard") if distributed.is_writer()
            else summaries.NullWriter())
  bar = tqdm.tqdm(total=num_epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch,
                  disable=not config.progress or not distributed.is_writer(), unit="step",
                  dynamic_ncols=True,
                  desc=f"{real} folds")

  def test_predictions(state, use_best=False):
    evaluate = test_eval if not use_best else _Evaluator(
        steps.make_eval_step(model, to_input=to_input, mesh=mesh, strategy=strategy,
                             fold_chunk=fold_chunk, use_best=True, compute_dtype=dtype),
        test_indices, chunk)
    logits = evaluate.logits(state, inputs, fold_sh)
    rows = []
    for lane in range(real):
      for j in np.flatnonzero(evaluate.valid[lane]):
        i = int(evaluate.idx[lane, j])
        rows.append((lane, i, logits[lane, j]))
    return rows

  def pooled(rows):
    y = np.asarray([clips.label[i] for _, i, _ in rows])
    p = np.asarray([int(np.argmax(lg)) for _, _, lg in rows])
    return metrics_lib.classification_metrics(y, p, num_classes)

  try:
    for epoch in range(start_epoch, num_epochs):
      if bool(distributed.to_host(state.stopped)[:real].all()):
        log.info("Every fold stopped early; ending training at epoch %d", epoch)
        break
      step_metrics = []
      for s in range(steps_per_epoch):
        state, m = train_step(state, fold_data, train_inputs, labels)
        step_metrics.append(m)
        if (s + 1) % config.log_every_steps == 0 or s + 1 == steps_per_epoch:
          loss = float(np.mean(distributed.to_host(m["loss"])[:real]))
          bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}")
        bar.update(1)
      fold_loss = np.mean([distributed.to_host(m["loss"]) for m in step_metrics], 0)[:real]
      fold_acc = np.mean([distributed.to_host(m["accuracy"]) for m in step_metrics], 0)[:real]
      stopped_before = distributed.to_host(state.stopped)[:real]
      bad = [names[f] for f in range(real) if not np.isfinite(fold_loss[f]) and not stopped_before[f]]
      if bad:
        raise FloatingPointError(
            f"Non-finite training loss in epoch {epoch + 1} for folds {bad}; the last good "
            f"checkpoint (epoch {mngr.latest_step()}) in {workdir} is kept. Lower "
            "train.learning_rate or check the inputs.")
      record = {"epoch": epoch + 1, "train_loss": float(fold_loss.mean()),
                "train_accuracy": float(fold_acc.mean()),
                "train_loss_per_fold": fold_loss.round(6).tolist()}
      if has_val:
        val_logits = val_eval.logits(state, inputs, fold_sh)
        val_loss = np.asarray(val_losses(val_logits, val_labels, loss_weights, val_eval.valid))
        state = steps.update_on_validation(state, jax.device_put(val_loss, fold_sh),
                                           plateau=plateau, early_stopping=early_stopping,
                                           keep_best=keep_best)
        record.update(val_loss=float(val_loss[:real].mean()),
                      lr_scale=float(distributed.to_host(state.lr_scale)[:real].mean()),
                      folds_stopped=int(distributed.to_host(state.stopped)[:real].sum()))
      if (epoch + 1) % config.eval.every_epochs == 0 or epoch + 1 == num_epochs:
        # Test-fold figures are recorded for the curves only; no decision reads them.
        test = pooled(test_predictions(state))
        record.update(test_accuracy=test["accuracy"], test_uar=test["uar"], test_uf1=test["uf1"])
      history.append(record)
      writer.write(epoch + 1, {k: v for k, v in record.items() if isinstance(v, (int, float))})
      if (epoch + 1) % config.checkpoint_every_epochs == 0 or epoch + 1 == num_epochs:
        checkpoints.save(mngr, epoch + 1, state, history, experiment)
    if mngr.latest_step() != len(history):
      checkpoints.save(mngr, len(history), state, history, experiment)
  finally:
    bar.close()
    writer.close()

  rows = test_predictions(state, use_best=keep_best)
  return _write_results(workdir, config, exp, rows, history, keep_best)


def _learning_rate(config: ml_collections.ConfigDict, steps_per_epoch: int):
  """The rate of train.lr_schedule: 'constant', 'cosine' (decay to zero over all training
  steps) or 'exponential' (x train.lr_decay after every epoch, STRCN's 0.8).

  Reduce-on-plateau scales whichever it is.
  """
  rate, schedule = config.train.learning_rate, config.train.lr_schedule
  if schedule == "constant":
    return rate
  if schedule == "cosine":
    return optax.cosine_decay_schedule(rate, config.train.num_epochs * steps_per_epoch)
  if schedule == "exponential":
    return optax.exponential_decay(rate, transition_steps=steps_per_epoch,
                                   decay_rate=config.train.get("lr_decay", 0.8), staircase=True)
  raise ValueError(f"Unknown train.lr_schedule {schedule!r}; known: 'constant', 'cosine', "
                   "'exponential'")


OPTIMIZERS = ("adam", "sgd")


def _optimizer(config: ml_collections.ConfigDict, steps_per_epoch: int):
  """train.optimizer 'adam' (default) or 'sgd' (train.momentum, the papers' Keras SGD), with
  train.weight_decay added to the gradient (L2 as Keras' regularisers and PyTorch's SGD do)."""
  rate = _learning_rate(config, steps_per_epoch)
  name = config.train.get("optimizer", "adam")
  if name == "adam":
    tx = optax.adam(rate)
  elif name == "sgd":
    tx = optax.sgd(rate, momentum=config.train.get("momentum", 0.0) or None)
  else:
    raise ValueError(f"Unknown train.optimizer {name!r}; known: {OPTIMIZERS}")
  weight_decay = config.train.get("weight_decay", 0.0)
  return optax.chain(optax.add_decayed_weights(weight_decay), tx) if weight_decay else tx


def _per_fold_constants(state, inputs, train_mask, fold_sh):
  """Sets the non-trainable per-fold constants a model derives from its fold's training clips
  only (STRCN-A's pixel selection; train_mask [F, N] of the state's lanes); other models pass
  through."""
  from mejax.models import strcn
  if strcn.PIXEL_INDEX not in state.batch_stats:
    return state
  num_pixels = state.batch_stats[strcn.PIXEL_INDEX].shape[-1]
  index = strcn.select_pixels(inputs, train_mask, num_pixels)
  stats = dict(state.batch_stats, **{strcn.PIXEL_INDEX: jax.device_put(index, fold_sh)})
  return state.replace(batch_stats=stats)


def _pretrained(config: ml_collections.ConfigDict, model, sample_input):
  """{(collection, *path): array} that config.init_from (a `mejax.convert` checkpoint) sets."""
  path = config.get("init_from", "")
  if not path:
    return None
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


def _write_results(workdir, config, exp, rows, history, keep_best) -> dict:
  clips, folds = exp.clips, exp.folds
  class_names = list(clips.class_names)
  table = {"sample_id": [], "dataset": [], "subject": [], "fold": [], "label": [], "prediction": []}
  lines = []
  for lane, i, logits in rows:
    probs = _softmax(logits)
    fold_name = folds.names[exp.fold_ids[lane]]
    pred = int(np.argmax(logits))
    for key, value in (("sample_id", clips.uid[i]), ("dataset", clips.dataset[i]),
                       ("subject", clips.subject[i]), ("fold", fold_name),
                       ("label", int(clips.label[i])), ("prediction", pred)):
      table[key].append(value)
    lines.append([clips.uid[i], clips.dataset[i], clips.subject[i], fold_name,
                  class_names[clips.label[i]], class_names[pred]] + [f"{q:.6f}" for q in probs])
  report = metrics_lib.evaluation_report(table, len(class_names), class_names)
  selection = ("best inner-validation epoch per fold" if keep_best else "last epoch")
  result = {"report": report, "model_selection": selection, "warnings": exp.warnings,
            "skipped_samples": len(clips.dropped), "folds_trained": len(exp.fold_ids),
            "history": history}
  if not distributed.is_writer():  # every process computes the report; process 0 writes it
    return report

  with tempfile.NamedTemporaryFile("w", dir=workdir, delete=False, suffix=".tmp",
                                   newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["sample_id", "dataset", "subject", "fold", "label", "prediction"] +
                    [f"p_{c}" for c in class_names])
    writer.writerows(lines)
  os.replace(f.name, workdir / "predictions.csv")
  title = (f"{config.model.name} | {','.join(config.data.datasets)} | {config.protocol.name} | "
           f"UAR {report['pooled']['uar']:.3f} UF1 {report['pooled']['uf1']:.3f}")
  analyze.plot_confusion(np.asarray(report["pooled"]["confusion"]), class_names,
                         workdir / "confusion_matrix.png", title)
  analyze.plot_curves(history, workdir / "training_curves.png", title)
  _write_atomic(workdir / "metrics.json", json.dumps(result, indent=1))
  print(metrics_lib.format_result_table(report))
  for w in exp.warnings:
    print(f"warning: {w}")
  return report
