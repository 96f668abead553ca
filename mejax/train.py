"""train_and_evaluate(config, workdir): every fold of a protocol trained at once, then evaluated.

The experiment loop, and only the loop: `sweep` builds what it computes with, `checkpoints` keeps
and resumes its state, `reports` writes its results. A killed run resumes from its last
checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
import time

import jax
import ml_collections
import numpy as np
import tqdm

from mejax import checkpoints
from mejax import distributed
from mejax import files
from mejax import memory
from mejax import metrics as metrics_lib
from mejax import protocols
from mejax import reports
from mejax import runs
from mejax import sharding
from mejax import steps
from mejax import summaries
from mejax import sweep as sweep_lib
from mejax import transfer

log = logging.getLogger(__name__)


def _write_folds(workdir: pathlib.Path, exp: sweep_lib.Experiment, resuming: bool) -> None:
  text = json.dumps(exp.folds_json, indent=1)
  path = workdir / "folds.json"
  if resuming and path.exists() and path.read_text() != text:
    raise ValueError(f"{path} defines other folds or samples than this run's data: the dataset "
                     "changed since the run started; use another --workdir")
  if not distributed.is_writer():  # every process checks the folds; process 0 writes them
    return
  files.write_atomic(path, text)
  skipped = {"count": len(exp.clips.dropped), "samples": exp.clips.dropped}
  files.write_atomic(workdir / "skipped_samples.json", json.dumps(skipped, indent=1))


class Evaluator:
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

  def predictions(self, state, inputs, fold_sharding, fold_names) -> reports.Predictions:
    """The real lanes' scores as Predictions (fold_names: the real lanes' fold names)."""
    logits = self.logits(state, inputs, fold_sharding)
    index, folds, rows = [], [], []
    for lane, name in enumerate(fold_names):
      for j in np.flatnonzero(self.valid[lane]):
        index.append(int(self.idx[lane, j]))
        folds.append(name)
        rows.append(logits[lane, j])
    return reports.Predictions(np.asarray(index, np.int64), folds,
                               np.asarray(rows, np.float32).reshape(len(index), -1))


def _save(mngr, epoch: int, state, history: list[dict], experiment: dict, writer) -> None:
  """Checkpoints `epoch`, then writes the TensorBoard scalars of the epochs it holds that were
  not written yet: a resume starts after its checkpoint, so no epoch is written twice. A full disk
  is named (`files.DiskFull`); orbax writes into a temporary folder, so a failed save leaves no
  checkpoint a resume would trust."""
  try:
    checkpoints.save(mngr, epoch, state, history, experiment)
  except Exception as e:  # noqa: BLE001  re-raised, as DiskFull when the disk is full
    full = files.as_disk_full(e, pathlib.Path(mngr.directory) / str(epoch),
                              needed=memory.tree_bytes(state))
    if full is not None:
      raise full from None
    raise
  writer.write_new(history)


# A run on a CPU whose training would take longer than this is told so when it starts.
LONG_RUN_SECONDS = 3600.0


def warn_if_long(seconds_per_step: float, steps_left: int) -> None:
  """Warns, on a CPU, when the first step's time x the steps left exceeds LONG_RUN_SECONDS."""
  estimate = seconds_per_step * steps_left
  if jax.default_backend() != "cpu" or estimate <= LONG_RUN_SECONDS:
    return
  log.warning("Training will take about %.1f h on this CPU (%.2f s per step x %d steps, "
              "evaluation not counted). The papers' settings are meant for a GPU; the config's "
              ":smoke preset (e.g. --config configs/convlstm.py:smoke) runs in minutes.",
              estimate / 3600, seconds_per_step, steps_left)


def _pooled(clips, predictions: reports.Predictions) -> dict:
  return metrics_lib.classification_metrics(clips.label[predictions.index],
                                            predictions.predicted, clips.num_classes)


def check_config(config: ml_collections.ConfigDict) -> None:
  """Every setting that can be checked without data, before anything is written: each owner
  checks its own (`sweep.check_config`: data, model, optimiser, steps; `protocols.FoldSpec`)."""
  sweep_lib.check_config(config)
  protocols.FoldSpec.from_config(config.protocol)


def _finished_report(workdir: pathlib.Path, config) -> dict | None:
  """The report of a finished run of this experiment in `workdir`, or None to train (or resume).
  Refuses another experiment's workdir. Damaged results of a finished run are recomputed from
  its last checkpoint (None), never trusted."""
  if checkpoints.check_workdir(workdir, config) != "resume":
    return None
  metrics_path = workdir / "metrics.json"
  if not metrics_path.exists():
    return None
  done = runs.read_metrics(workdir)
  try:
    rows = reports.read_predictions_csv(workdir / "predictions.csv")
    intact = len(rows) == done["report"]["pooled"]["n"]  # every test clip has its row
  except (ValueError, KeyError, TypeError):  # unreadable, or metrics.json is not a report
    intact = False
  if not intact:
    log.warning("%s or %s is damaged: recomputing the results from the last checkpoint",
                metrics_path, workdir / "predictions.csv")
    return None
  checkpoints.repair_config(workdir, config)
  return done["report"]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains every fold of the protocol at once and writes the results into `workdir`.

  Everything that can be refused (settings, data, folds, init_from, memory) is refused before
  the workdir is written. Returns the evaluation report (the content of metrics.json's "report").
  """
  workdir = pathlib.Path(workdir)
  check_config(config)
  pretrained = transfer.initial_variables(config)
  # Process 0 decides from the workdir; the others share its answer (or its failure).
  if distributed.on_writer(lambda: _finished_report(workdir, config) is not None,
                           "reading the workdir"):
    done = runs.read_metrics(workdir)
    if distributed.is_writer():
      print(f"{workdir} holds a finished run of this experiment; its results:")
      print(metrics_lib.format_result_table(done["report"]))
    return done["report"]

  exp = sweep_lib.prepare(config, write_cache=distributed.is_writer())
  clips, folds = exp.clips, exp.folds
  devices = distributed.mesh_devices(config.mesh.num_devices)
  mesh = sharding.make_mesh(config.mesh.data, devices)
  sweep = sweep_lib.build(config, clips.num_classes, exp.inputs.shape[1:], mesh=mesh,
                          labels=clips.label, train_mask=folds.train, val_mask=folds.val,
                          fold_ids=exp.fold_ids)
  abstract_state = sweep.abstract_state(pretrained)
  # Refuse a sweep whose resident state cannot fit before anything runs (numbers in the error).
  # Measured on this process's device, then the least over processes: all must pick one chunk.
  free_before = distributed.min_over_processes(memory.device_free_bytes(
      distributed.local_mesh_device(devices), memory.num_host_devices()))
  resident = sweep.resident_bytes(abstract_state, exp.inputs, exp.train_inputs)
  folds_per_device = len(sweep.lanes) // mesh.shape[sharding.FOLD]
  memory.check_resident_fits(*resident, free_before, folds_per_device)

  # One run at a time in a workdir: process 0 holds its lock until the run ends.
  with checkpoints.locked(workdir) if distributed.is_writer() else contextlib.nullcontext():
    resuming = bool(distributed.on_writer(lambda: checkpoints.claim_workdir(workdir, config),
                                          "claiming the workdir"))
    _write_folds(workdir, exp, resuming)
    return _run(config, workdir, exp, sweep, pretrained, abstract_state,
                (free_before, resident))


def _run(config, workdir: pathlib.Path, exp: sweep_lib.Experiment, sweep: sweep_lib.Sweep,
         pretrained, abstract_state, memory_plan) -> dict:
  """The loop: resume or initialise, train every epoch, checkpoint, evaluate, report."""
  clips, folds = exp.clips, exp.folds
  fold_sh, repl = sweep.fold_sharding, sweep.replicated
  inputs = jax.device_put(exp.inputs, repl)
  train_inputs = (jax.device_put(exp.train_inputs, repl) if exp.train_inputs is not None
                  else inputs)
  labels = jax.device_put(clips.label.astype(np.int32), repl)
  free_before, resident = memory_plan
  mngr = checkpoints.manager(workdir)
  experiment = checkpoints.experiment_record(config, exp.folds_json, exp.fold_ids, sweep.lanes)
  restored = checkpoints.restore_latest(mngr, abstract_state,
                                        fall_back=not distributed.multi_process())
  if restored is not None:
    start_epoch, state, history = restored
    log.info("Resuming %s from epoch %d", workdir, start_epoch)
  else:
    start_epoch, state, history = 0, sweep.init_state(exp.inputs, pretrained), []

  fold_chunk, train_step = sweep.compile_train_step(state, inputs, train_inputs, labels,
                                                    free_before, resident)
  chunk = config.eval.batch_size
  val_mask, test_mask = folds.val[sweep.lanes], folds.test[sweep.lanes]
  test_indices = [np.flatnonzero(m) for m in test_mask]
  eval_step = sweep.eval_program(fold_chunk)
  test_eval = Evaluator(eval_step, test_indices, chunk)
  val_eval = Evaluator(eval_step, [np.flatnonzero(m) for m in val_mask], chunk)
  has_val = bool(val_mask.any())
  # One call per epoch for every fold's validation loss, not one host round trip per fold.
  val_losses = jax.jit(jax.vmap(steps.weighted_cross_entropy))
  val_labels = clips.label[val_eval.idx]
  plateau = ((config.train.plateau_patience, config.train.plateau_factor,
              config.train.plateau_min_scale) if config.train.plateau_patience > 0 else None)
  early_stopping = config.train.early_stopping_patience or None

  real = sweep.num_real
  names = [folds.names[f] for f in exp.fold_ids]
  num_epochs, steps_per_epoch = config.train.num_epochs, sweep.steps_per_epoch
  writer = (summaries.ScalarWriter if distributed.is_writer() else summaries.NullWriter)(
      workdir / "tensorboard", history)
  bar = tqdm.tqdm(total=num_epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch,
                  disable=not config.progress or not distributed.is_writer(), unit="step",
                  dynamic_ncols=True, desc=f"{real} folds")
  try:
    for epoch in range(start_epoch, num_epochs):
      if bool(distributed.to_host(state.stopped)[:real].all()):
        log.info("Every fold stopped early; ending training at epoch %d", epoch)
        break
      step_metrics = []
      for s in range(steps_per_epoch):
        timing = epoch == start_epoch and s == 0 and distributed.is_writer()
        started = time.perf_counter()
        state, m = train_step(state, sweep.fold_data, train_inputs, labels)
        if timing:
          jax.block_until_ready(m)
          warn_if_long(time.perf_counter() - started,
                       (num_epochs - start_epoch) * steps_per_epoch - 1)
        step_metrics.append(m)
        if (s + 1) % config.log_every_steps == 0 or s + 1 == steps_per_epoch:
          loss = float(np.mean(distributed.to_host(m["loss"])[:real]))
          bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}")
        bar.update(1)
      fold_loss = np.mean([distributed.to_host(m["loss"]) for m in step_metrics], 0)[:real]
      fold_acc = np.mean([distributed.to_host(m["accuracy"]) for m in step_metrics], 0)[:real]
      stopped_before = distributed.to_host(state.stopped)[:real]
      bad = [names[f] for f in range(real)
             if not np.isfinite(fold_loss[f]) and not stopped_before[f]]
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
        val_loss = np.asarray(val_losses(val_logits, val_labels, sweep.fold_data.loss_weights,
                                         val_eval.valid))
        state = steps.update_on_validation(state, jax.device_put(val_loss, fold_sh),
                                           plateau=plateau, early_stopping=early_stopping,
                                           keep_best=sweep.keep_best)
        record.update(val_loss=float(val_loss[:real].mean()),
                      lr_scale=float(distributed.to_host(state.lr_scale)[:real].mean()),
                      folds_stopped=int(distributed.to_host(state.stopped)[:real].sum()))
      if (epoch + 1) % config.eval.every_epochs == 0 or epoch + 1 == num_epochs:
        # Test-fold figures are recorded for the curves only; no decision reads them.
        test = _pooled(clips, test_eval.predictions(state, inputs, fold_sh, names))
        record.update(test_accuracy=test["accuracy"], test_uar=test["uar"], test_uf1=test["uf1"])
      history.append(record)
      if (epoch + 1) % config.checkpoint_every_epochs == 0 or epoch + 1 == num_epochs:
        _save(mngr, epoch + 1, state, history, experiment, writer)
    if mngr.latest_step() != len(history):
      _save(mngr, len(history), state, history, experiment, writer)
  finally:
    bar.close()
    writer.close()

  final_eval = test_eval if not sweep.keep_best else Evaluator(
      sweep.eval_program(fold_chunk, use_best=True), test_indices, chunk)
  predictions = final_eval.predictions(state, inputs, fold_sh, names)
  selection = "best inner-validation epoch per fold" if sweep.keep_best else "last epoch"
  if not distributed.is_writer():  # every process computes the report; process 0 writes it
    return reports.evaluation_report(clips, predictions)
  return reports.write_results(workdir, config, clips, predictions, history,
                               selection=selection, warnings=exp.warnings,
                               folds_trained=len(exp.fold_ids))
