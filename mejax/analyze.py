"""python -m mejax.analyze --workdir W [--out W/analysis]: a restored run, analysed.

Restores every fold's model from the run's checkpoint (on this machine's devices, whatever
trained it), re-scores each fold's test clips and checks them against predictions.csv, then
writes report.html (self-contained) with its PNGs beside it: result tables (pooled, per dataset,
subject and fold), confusion matrices, per-subject accuracy, learning curves, a reliability
diagram with the expected calibration error, embeddings of the penultimate features, saliency
strips and a gallery of misclassified clips. Nothing in the workdir is changed.

  python -m mejax.analyze --workdir runs/smoke              # -> runs/smoke/analysis/report.html
  python -m mejax.analyze --workdir runs/x --data_dir /copied/tensorflow_datasets --out /tmp/a
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
import time

import numpy as np

from mejax import cli
from mejax import reports
from mejax import runs
from mejax import saliency as saliency_lib

log = logging.getLogger(__name__)

# predictions.csv keeps 6 decimals; recomputation on other devices differs by float rounding.
TOLERANCE = 2e-4


class Mismatch(ValueError):
  """Recomputed test predictions differ from the run's predictions.csv."""


def recompute(run: runs.Run, view: np.ndarray) -> tuple[reports.Predictions, np.ndarray]:
  """Every trained fold's test clips scored by its own model: (Predictions, features [M, D])."""
  index, folds, logits, features = [], [], [], []
  for fold in run.fold_names:
    rows = run.test_indices(fold)
    fold_logits, fold_features = run.apply(fold, view[rows])
    index.append(rows)
    folds += [fold] * len(rows)
    logits.append(fold_logits)
    features.append(fold_features)
  return (reports.Predictions(np.concatenate(index), folds, np.concatenate(logits)),
          np.concatenate(features))


def check_against_csv(run: runs.Run, clips, predictions: reports.Predictions) -> str:
  """Compares recomputed probabilities with predictions.csv; Mismatch names the first clip that
  differs and both values. Returns what was checked."""
  path = run.workdir / "predictions.csv"
  stored = {(r["sample_id"], r["fold"]): r for r in reports.read_predictions_csv(path)}
  columns = [f"p_{c}" for c in run.class_names]
  worst = 0.0
  for i, fold, probs in zip(predictions.index, predictions.fold, predictions.probabilities):
    key = (clips.uid[i], fold)
    if key not in stored:
      raise Mismatch(f"{path}: no row for test clip {key[0]} of fold {fold}")
    saved = np.asarray([float(stored[key][c]) for c in columns])
    gap = float(np.abs(saved - probs).max())
    if gap > TOLERANCE:
      raise Mismatch(f"{path}: clip {key[0]} (fold {fold}): predictions.csv has "
                     f"{np.round(saved, 6).tolist()}, the restored model gives "
                     f"{np.round(probs, 6).tolist()} (tolerance {TOLERANCE})")
    worst = max(worst, gap)
  if len(stored) != len(predictions.index):
    raise Mismatch(f"{path}: {len(stored)} rows, but the folds have {len(predictions.index)} "
                   "test clips")
  return (f"Re-evaluated {len(predictions.index)} test clips from the restored checkpoints: "
          f"equal to predictions.csv (largest probability difference {worst:.1e}).")


def _saliency_examples(run, clips, view, predictions, per_class: int):
  """Up to `per_class` right and `per_class` wrong test clips of every class with their maps (each
  method of `saliency.methods_of`), and every test clip's saliency-in-motion ratio (gradient x
  input: the pixel-level map)."""
  ratios = np.full(len(predictions.index), np.nan)
  labels = clips.label[predictions.index]
  chosen = []
  for c in range(run.num_classes):
    for right in (True, False):
      rows = np.flatnonzero((labels == c) & ((predictions.predicted == c) == right))
      chosen += rows[:per_class].tolist()
  chosen = set(chosen)
  methods = saliency_lib.methods_of(run)
  examples = []
  folds = np.asarray(predictions.fold)
  for fold in run.fold_names:
    rows = np.flatnonzero(folds == fold)
    if not len(rows):
      continue
    clip_rows = predictions.index[rows]
    pixel_maps = saliency_lib.maps(run, fold, view[clip_rows], predictions.predicted[rows],
                                   "grad_x_input")
    ratios[rows] = saliency_lib.mass_ratio(pixel_maps, saliency_lib.motion_mask(view[clip_rows]))
    picked = [k for k, row in enumerate(rows) if row in chosen]
    if not picked:
      continue
    maps = {"grad_x_input": pixel_maps[picked]}
    if "gradcam" in methods:
      maps["gradcam"] = saliency_lib.maps(run, fold, view[clip_rows[picked]],
                                          predictions.predicted[rows[picked]], "gradcam")
    for j, k in enumerate(picked):
      row, i = rows[k], clip_rows[k]
      examples.append(reports.SaliencyExample(
          clips.uid[i], fold, run.class_names[labels[row]],
          run.class_names[predictions.predicted[row]], view[i],
          {m: maps[m][j] for m in methods}, float(ratios[row])))
  return examples, ratios, methods


def _gallery(run, clips, view, predictions, limit: int, original) -> list[reports.GalleryItem]:
  """Misclassified test clips, most confident first: onset / apex / offset frames of the stored
  clip where the dataset's records are readable, else the view's first / middle / last frame."""
  probs = predictions.probabilities
  wrong = np.flatnonzero(predictions.predicted != clips.label[predictions.index])
  wrong = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:limit]
  items = []
  for row in wrong:
    i = predictions.index[row]
    if original is not None:
      frames = original[clips.uid[i]]
      marks = [int(clips.onset[i]), int(clips.apex[i]), int(clips.offset[i])]
      if marks[1] < 0:  # apex not annotated (SMIC)
        marks[1] = (marks[0] + marks[2]) // 2
      thumbs = [frames[min(m, len(frames) - 1)] for m in marks]
      captions = [f"onset {marks[0]}", f"apex {marks[1]}", f"offset {marks[2]}"]
    else:
      t = len(view[i])
      thumbs = [view[i][0], view[i][t // 2], view[i][t - 1]]
      captions = ["view frame 0", f"view frame {t // 2}", f"view frame {t - 1}"]
    items.append(reports.GalleryItem(
        clips.uid[i], predictions.fold[row], run.class_names[clips.label[i]],
        run.class_names[predictions.predicted[row]], float(probs[row].max()), thumbs, captions))
  return items


def _original_frames(run, data_dir) -> dict | None:
  """uid -> stored frames of the run's clips, from the TFRecords; None where they cannot be read
  (no TensorFlow, or only the view cache was copied)."""
  try:
    from mejax.data import clipset as clipset_lib
    data = run.config.data
    from mejax.data import stand_ins
    clips = clipset_lib.load(stand_ins.resolve(data), data_dir or data.data_dir, data.label_map)
  except Exception as e:  # noqa: BLE001  an optional picture; the report says what it shows
    log.info("Stored frames unavailable (%s); the gallery shows view frames", e)
    return None
  return dict(zip(clips.uid.tolist(), clips.frames))


def analyze(workdir, out=None, *, data_dir: str | None = None, epoch: int | None = None,
            select: str = "reported", examples_per_class: int = 2, gallery_size: int = 12) -> dict:
  """Writes the analysis of the run in `workdir` into `out` (default W/analysis); returns a
  summary (report path, pooled metrics, ECE, saliency ratio, timings)."""
  start = time.perf_counter()
  workdir = pathlib.Path(workdir)
  out = pathlib.Path(out) if out else workdir / "analysis"
  if out.exists() and not out.is_dir():
    raise ValueError(f"--out {out}: is a file; expected a folder for report.html and its PNGs")
  if examples_per_class < 0:
    raise ValueError(f"examples_per_class={examples_per_class}: expected an integer >= 0")
  run = runs.load(workdir, epoch=epoch, select=select)
  clips, view = run.data(data_dir)
  loaded = time.perf_counter()
  predictions, features = recompute(run, view)
  checks, notes = [], list(run.notes)
  csv_path = workdir / "predictions.csv"
  comparable = run.finished and run.selection == run.reported
  if comparable and csv_path.exists():
    checks.append(check_against_csv(run, clips, predictions))
  elif comparable:
    notes.append(f"{csv_path} is missing: the recomputed predictions could not be checked.")
  else:
    notes.append("Predictions recomputed for this checkpoint / state; predictions.csv (the "
                 "run's reported state) was not compared.")
  evaluated = time.perf_counter()
  examples, ratios, methods = _saliency_examples(run, clips, view, predictions,
                                                 examples_per_class)
  original = _original_frames(run, data_dir)
  gallery = _gallery(run, clips, view, predictions, gallery_size, original)
  report = reports.evaluation_report(clips, predictions)
  config = run.config.to_dict()
  title = (f"{run.config.model.name} | {','.join(run.config.data.datasets)} | "
           f"{run.config.protocol.name}, {len(run.fold_names)} folds | epoch {run.epoch} "
           f"({run.selection} state)")
  analysis = reports.Analysis(
      title=title, workdir=str(workdir), config=config, class_names=list(run.class_names),
      report=report, history=run.history, fold_names=run.fold_names, predictions=predictions,
      labels=clips.label[predictions.index], datasets=clips.dataset[predictions.index],
      subjects=clips.subject_key[predictions.index], features=features,
      saliency_methods=list(methods), saliency=examples, motion_ratios=ratios, gallery=gallery,
      checks=checks, notes=notes)
  path = reports.write_html(out, analysis)
  done = time.perf_counter()
  finite = ratios[np.isfinite(ratios)]
  return {"report": str(path), "pooled": {k: report["pooled"][k] for k in ("accuracy", "uar",
                                                                          "uf1")},
          "ece": reports.calibration(predictions.probabilities, analysis.labels)["ece"],
          "saliency_motion_ratio_median": float(np.median(finite)) if len(finite) else None,
          "checks": checks, "notes": notes,
          "seconds": {"restore_and_data": loaded - start, "re_evaluation": evaluated - loaded,
                      "figures": done - evaluated, "total": done - start}}


def main(argv=None) -> int:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow reads records only
  ap = cli.ArgumentParser(prog="python -m mejax.analyze", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--workdir", required=True, help="the run's workdir")
  ap.add_argument("--out", help="folder of report.html and its PNGs (default WORKDIR/analysis)")
  ap.add_argument("--data_dir", help="where the run's datasets (or their mejax_views/ cache) are, "
                  "if not where its config says")
  ap.add_argument("--epoch", type=int, help="checkpoint to analyse (default: the newest)")
  ap.add_argument("--select", default="reported", choices=runs.SELECTIONS,
                  help="which state: the one the run reported, its final or its best")
  ap.add_argument("--examples_per_class", type=cli.at_least(0), default=2,
                  help="saliency strips per class, of right and of wrong predictions each")
  args = ap.parse_args(argv)
  logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
  logging.getLogger("absl").setLevel(logging.ERROR)  # orbax's notes on read-only managers
  try:
    summary = analyze(args.workdir, args.out, data_dir=args.data_dir, epoch=args.epoch,
                      select=args.select, examples_per_class=args.examples_per_class)
  except (runs.RunError, Mismatch, ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for line in summary["notes"] + summary["checks"]:
    print(line)
  pooled = summary["pooled"]
  ratio = summary["saliency_motion_ratio_median"]
  print(f"accuracy {pooled['accuracy']:.4f}  UAR {pooled['uar']:.4f}  UF1 {pooled['uf1']:.4f}  "
        f"ECE {summary['ece']:.3f}  saliency-in-motion ratio (median, gradient x input) "
        f"{'n/a' if ratio is None else f'{ratio:.2f}'}")
  print(f"Report: {summary['report']} ({summary['seconds']['total']:.1f} s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
