"""Everything a run reports, from its clips, folds, test predictions and history.

Training calls `write_results` at its end (predictions.csv, metrics.json and two plots);
`python -m mejax.analyze` calls it again on a restored run (recomputing damaged or missing
results) and adds `write_html`: tables, confusion matrices, curves, calibration, embeddings,
saliency and a gallery of mistakes in one self-contained report.html with its PNGs beside it.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import json
import pathlib
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mejax import files  # noqa: E402
from mejax import metrics as metrics_lib  # noqa: E402

PREDICTION_COLUMNS = ("sample_id", "dataset", "subject", "fold", "label", "prediction")


@dataclasses.dataclass
class Predictions:
  """Test predictions of a run: one row per (fold, test clip), in fold then clip order."""
  index: np.ndarray            # int [M]: clip indices into the run's ClipSet
  fold: list[str]              # [M] fold names
  logits: np.ndarray           # float32 [M, C]

  @property
  def probabilities(self) -> np.ndarray:
    return softmax(self.logits)

  @property
  def predicted(self) -> np.ndarray:
    return np.argmax(self.logits, axis=-1)


def softmax(logits: np.ndarray) -> np.ndarray:
  z = logits - logits.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def _save_figure(fig, path: pathlib.Path) -> None:
  """Saves atomically, like the other results."""
  try:
    with files.atomic(path, "wb", suffix=".tmp.png") as f:
      fig.savefig(f, format="png")
  finally:
    plt.close(fig)


# ---- results of a run (training writes them) -----------------------------------------------------

# Figures a config can add to the reported accuracy / UAR / UF1 (eval.extra_metrics), for the
# papers that reported them: STRCN's micro-averaged F1, the strict UF1 over all classes.
EXTRA_METRICS = ("micro_f1", "uf1_all_classes")


def extra_metrics(config) -> tuple[str, ...]:
  """eval.extra_metrics (default ()): names from EXTRA_METRICS, reported beside accuracy, UAR and
  UF1 in metrics.json ("report" -> "extra_metrics", pooled) and in the results table."""
  names = config.eval.get("extra_metrics", ())
  if (isinstance(names, str) or not isinstance(names, (tuple, list))
      or not all(isinstance(n, str) and n in EXTRA_METRICS for n in names)):
    raise ValueError(f"eval.extra_metrics={names!r}: must be a tuple of names from "
                     f"{EXTRA_METRICS}, e.g. ('micro_f1',)")
  return tuple(dict.fromkeys(names))


def evaluation_report(clips, predictions: Predictions, warnings: Sequence[str] = (),
                      extra: Sequence[str] = ()) -> dict:
  """metrics.json's "report": pooled, per dataset / subject / fold; `extra` (EXTRA_METRICS
  names, see `extra_metrics`) adds "extra_metrics": {name: pooled value}, which the results
  table shows."""
  i = predictions.index
  table = {"sample_id": clips.sample_id[i], "dataset": clips.dataset[i],
           "subject": clips.subject[i], "fold": np.asarray(predictions.fold),
           "label": clips.label[i], "prediction": predictions.predicted}
  report = metrics_lib.evaluation_report(table, clips.num_classes, list(clips.class_names),
                                         warnings=warnings)
  if extra:
    report["extra_metrics"] = {name: report["pooled"][name] for name in extra}
  return report


def predictions_csv(clips, predictions: Predictions) -> str:
  """predictions.csv: sample id, dataset, subject, fold, label, prediction, class probabilities."""
  names = list(clips.class_names)
  out = io.StringIO(newline="")
  writer = csv.writer(out)
  writer.writerow(list(PREDICTION_COLUMNS) + [f"p_{c}" for c in names])
  for i, fold, probs, pred in zip(predictions.index, predictions.fold,
                                  predictions.probabilities, predictions.predicted):
    writer.writerow([clips.uid[i], clips.dataset[i], clips.subject[i], fold,
                     names[clips.label[i]], names[pred]] + [f"{q:.6f}" for q in probs])
  return out.getvalue()


def read_predictions_csv(path: pathlib.Path) -> list[dict]:
  """The rows of a predictions.csv; ValueError naming the file when it is not one."""
  try:
    with open(path, newline="") as f:
      rows = list(csv.DictReader(f))
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise ValueError(f"{path}: unreadable ({e})") from None
  if not rows or any(c not in rows[0] for c in PREDICTION_COLUMNS):
    raise ValueError(f"{path}: not a mejax predictions.csv (columns {PREDICTION_COLUMNS} and "
                     "p_<class> expected)")
  for number, row in enumerate(rows, start=2):
    if None in row.values() or None in row:  # DictReader's marks of a short or long row
      raise ValueError(f"{path}: row {number} has {len(row) - (None in row)} of the "
                       f"{len(rows[0])} columns (the file is cut short or damaged)")
  return rows


def title_of(config, report: dict) -> str:
  return (f"{config.model.name} | {','.join(config.data.datasets)} | {config.protocol.name} | "
          f"UAR {report['pooled']['uar']:.3f} UF1 {report['pooled']['uf1']:.3f}")


def write_results(workdir: pathlib.Path, config, clips, predictions: Predictions,
                  history: list[dict], *, selection: str, warnings: Sequence[str],
                  folds_trained: int, quiet: bool = False) -> dict:
  """predictions.csv, confusion_matrix.png, training_curves.png and metrics.json (written last:
  its presence marks a finished run). Returns the evaluation report."""
  report = evaluation_report(clips, predictions, extra=extra_metrics(config))
  result = {"report": report, "model_selection": selection, "warnings": list(warnings),
            "skipped_samples": len(clips.dropped), "folds_trained": folds_trained,
            "history": history}
  files.write_atomic(workdir / "predictions.csv", predictions_csv(clips, predictions))
  title = title_of(config, report)
  plot_confusion(np.asarray(report["pooled"]["confusion"]), list(clips.class_names),
                 workdir / "confusion_matrix.png", title)
  plot_curves(history, workdir / "training_curves.png", title)
  files.write_atomic(workdir / "metrics.json", json.dumps(result, indent=1))
  if not quiet:
    print(metrics_lib.format_result_table(report))
    for w in warnings:
      print(f"warning: {w}")
  return report


# ---- plots ---------------------------------------------------------------------------------------

def plot_confusion(confusion: np.ndarray, class_names, path: pathlib.Path, title: str) -> None:
  """Row-normalised confusion matrix with the counts written in each cell."""
  confusion = np.asarray(confusion, dtype=np.float64)
  rows = confusion.sum(1, keepdims=True)
  normalised = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
  fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
  image = ax.imshow(normalised, vmin=0, vmax=1, cmap="Blues")
  ax.set_xticks(range(len(class_names)), class_names, rotation=30)
  ax.set_yticks(range(len(class_names)), class_names)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  for i in range(len(class_names)):
    for j in range(len(class_names)):
      ax.text(j, i, f"{normalised[i, j]:.2f}\n({int(confusion[i, j])})", ha="center", va="center",
              fontsize=8, color="white" if normalised[i, j] > 0.5 else "black")
  ax.set_title(title, fontsize=9)
  fig.colorbar(image, ax=ax, fraction=0.046)
  fig.tight_layout()
  _save_figure(fig, path)


def plot_curves(history: list[dict], path: pathlib.Path, title: str,
                per_fold: bool = False) -> None:
  """Training loss per epoch (per_fold: every fold's, thin, and their mean), the inner-validation
  loss and the pooled test scores where recorded (for reading only: no decision used them)."""
  epochs = [h["epoch"] for h in history]
  fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
  if per_fold:
    losses = np.asarray([h.get("train_loss_per_fold", [h["train_loss"]]) for h in history])
    for f in range(losses.shape[1]):
      ax_loss.plot(epochs, losses[:, f], color="#99aacc", linewidth=0.7, alpha=0.7,
                   label="train loss, one fold" if f == 0 else None)
    ax_loss.plot(epochs, losses.mean(1), color="#223366", linewidth=2.2,
                 label=f"train loss, mean of {losses.shape[1]} folds")
  else:
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train loss")
  val = [(h["epoch"], h["val_loss"]) for h in history if "val_loss" in h]
  if val:
    ax_loss.plot(*zip(*val), color="#cc6633", linewidth=1.8, label="inner-validation loss")
  ax_loss.set_xlabel("epoch")
  ax_loss.set_ylabel("loss (sampled training batches)")
  ax_loss.legend(fontsize=7)
  ax_score.plot(epochs, [h["train_accuracy"] for h in history],
                label="train accuracy (sampled batches)")
  for key, label in (("test_uar", "test UAR (pooled)"), ("test_uf1", "test UF1 (pooled)"),
                     ("test_accuracy", "test accuracy (pooled)")):
    points = [(h["epoch"], h[key]) for h in history if key in h]
    if points:
      ax_score.plot(*zip(*points), marker="o", markersize=3, label=label)
  ax_score.set_ylim(0, 1)
  ax_score.set_xlabel("epoch")
  ax_score.legend(fontsize=7)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  _save_figure(fig, path)


# ---- the analysis report (python -m mejax.analyze) -----------------------------------------------

@dataclasses.dataclass
class SaliencyExample:
  """One clip's saliency strip: its view frames and map, for the class the model predicted."""
  uid: str
  fold: str
  true: str
  predicted: str
  frames: np.ndarray           # uint8 [T, H, W, C] view
  maps: dict[str, np.ndarray]  # method -> float [T, H, W]
  motion_ratio: float          # of the gradient x input map


@dataclasses.dataclass
class GalleryItem:
  """A misclassified clip: onset / apex / offset thumbnails with the true and predicted class."""
  uid: str
  fold: str
  true: str
  predicted: str
  confidence: float
  thumbnails: list[np.ndarray]  # uint8 [H, W, C]
  captions: list[str]


@dataclasses.dataclass
class Analysis:
  """Everything report.html shows; computed by `mejax.analyze` from a restored run."""
  title: str
  workdir: str
  config: dict
  class_names: list[str]
  report: dict                 # evaluation report of the recomputed test predictions
  history: list[dict]
  fold_names: list[str]
  predictions: Predictions
  labels: np.ndarray           # [M] true class of every prediction row
  datasets: np.ndarray         # [M]
  subjects: np.ndarray         # [M] subject keys
  features: np.ndarray         # [M, D] penultimate features, each from its own fold's model
  saliency_methods: list[str]
  saliency: list[SaliencyExample]
  # [M] gradient-x-input saliency-in-motion ratio of every test clip (NaN: an all-zero map)
  motion_ratios: np.ndarray
  gallery: list[GalleryItem]
  checks: list[str]            # what was verified (re-evaluation against predictions.csv, ...)
  notes: list[str]             # what a reader must know (unfinished run, ...)


def calibration(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
  """Reliability of the top-class probability: per bin of confidence its clips' accuracy and mean
  confidence, and the expected calibration error ECE = sum_b n_b / N |acc_b - conf_b|."""
  confidence = probabilities.max(1)
  correct = (probabilities.argmax(1) == labels).astype(np.float64)
  edges = np.linspace(0, 1, bins + 1)
  which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
  rows, ece = [], 0.0
  for b in range(bins):
    in_bin = which == b
    n = int(in_bin.sum())
    acc = float(correct[in_bin].mean()) if n else float("nan")
    conf = float(confidence[in_bin].mean()) if n else float("nan")
    if n:
      ece += n / len(labels) * abs(acc - conf)
    rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": n, "accuracy": acc,
                 "confidence": conf})
  return {"bins": rows, "ece": float(ece), "n": int(len(labels))}


def embed_2d(features: np.ndarray, folds: Sequence[str], seed: int = 0) -> tuple[np.ndarray, str]:
  """2-D coordinates of every row and the method: features standardised within each fold (each
  fold's model has its own feature space), then t-SNE, or PCA for fewer than 50 clips."""
  from sklearn import decomposition, manifold
  x = np.asarray(features, np.float64).copy()
  folds = np.asarray(folds)
  for fold in np.unique(folds):
    rows = folds == fold
    x[rows] = (x[rows] - x[rows].mean(0)) / (x[rows].std(0) + 1e-8)
  if len(x) < 3:
    return np.zeros((len(x), 2)), "none (fewer than 3 clips)"
  if len(x) < 50:
    return decomposition.PCA(2, random_state=seed).fit_transform(x), "PCA"
  perplexity = float(min(30.0, (len(x) - 1) / 3))
  return manifold.TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x), \
      f"t-SNE (perplexity {perplexity:.0f})"


def _plot_per_subject(report: dict, path: pathlib.Path, title: str) -> None:
  entries = report.get("per_subject", {})
  names = list(entries)
  acc = [entries[n]["accuracy"] for n in names]
  fig, ax = plt.subplots(figsize=(7, max(2.5, 0.22 * len(names) + 1)), dpi=110)
  ax.barh(range(len(names)), acc, color="#4477aa")
  ax.set_yticks(range(len(names)), [f"{n} (n={entries[n]['n']})" for n in names], fontsize=7)
  ax.invert_yaxis()
  ax.axvline(report["pooled"]["accuracy"], color="k", linestyle="--", linewidth=1,
             label=f"pooled {report['pooled']['accuracy']:.3f}")
  ax.set_xlim(0, 1)
  ax.set_xlabel("test accuracy of the subject's clips")
  ax.legend(fontsize=8, loc="lower right")
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  _save_figure(fig, path)


def _plot_reliability(cal: dict, path: pathlib.Path, title: str) -> None:
  fig, ax = plt.subplots(figsize=(4.4, 4.0), dpi=110)
  bins = cal["bins"]
  centres = [(b["low"] + b["high"]) / 2 for b in bins]
  acc = [b["accuracy"] if b["n"] else 0.0 for b in bins]
  ax.bar(centres, acc, width=0.1, edgecolor="k", color="#4477aa", alpha=0.8,
         label="accuracy of the bin's clips")
  ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
  for c, b in zip(centres, bins):
    if b["n"]:
      ax.text(c, 0.02, str(b["n"]), ha="center", fontsize=6, color="white")
  ax.set_xlim(0, 1)
  ax.set_ylim(0, 1)
  ax.set_xlabel("confidence (top-class probability)")
  ax.set_ylabel("accuracy")
  ax.legend(fontsize=7, loc="upper left")
  ax.set_title(f"{title}\nECE {cal['ece']:.3f} over {cal['n']} test clips", fontsize=8)
  fig.tight_layout()
  _save_figure(fig, path)


def _plot_embedding(coords: np.ndarray, method: str, groups: dict[str, np.ndarray],
                    path: pathlib.Path, title: str) -> None:
  fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4.0), dpi=110)
  for ax, (name, values) in zip(np.atleast_1d(axes), groups.items()):
    values = np.asarray(values).astype(str)
    kinds = sorted(set(values.tolist()))
    cmap = plt.get_cmap("tab10" if len(kinds) <= 10 else "tab20")
    for i, kind in enumerate(kinds):
      rows = values == kind
      ax.scatter(coords[rows, 0], coords[rows, 1], s=10, color=cmap(i % cmap.N), label=kind)
    if len(kinds) <= 12:
      ax.legend(fontsize=6, markerscale=1.5)
    ax.set_title(f"by {name} ({len(kinds)})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(f"{title}\n{method} of test clips' penultimate features, each from its own fold's "
               "model", fontsize=8)
  fig.tight_layout()
  _save_figure(fig, path)


def _enlarge(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 [H, W, C] -> [size, size, 3] (nearest), grey and two-channel flow shown as RGB."""
  import cv2
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, -1)
  elif image.shape[-1] == 2:
    image = np.concatenate([image, np.full(image.shape[:2] + (1,), 128, np.uint8)], -1)
  elif image.shape[-1] > 3:
    image = image[..., :3]
  return cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)


def _short(uid: str) -> str:
  return uid.split("/", 1)[-1]


METHOD_NAMES = {"gradcam": "Grad-CAM", "grad_x_input": "gradient x input"}


def _plot_saliency(examples: Sequence[SaliencyExample], path: pathlib.Path, title: str,
                   size: int = 72) -> None:
  """Per example a row of the view's frames, then one row per method with its map laid over
  them (each map scaled to its own peak over the clip)."""
  frames = max(len(e.frames) for e in examples)
  methods = list(examples[0].maps)
  per = 1 + len(methods)
  fig, axes = plt.subplots(per * len(examples), frames, squeeze=False,
                           figsize=(max(8.0, 0.95 * frames), 1.15 * per * len(examples) + 0.8),
                           dpi=100)
  fig.subplots_adjust(left=0.04, right=0.99, bottom=0.01, top=1 - 0.6 / fig.get_figheight(),
                      hspace=0.25, wspace=0.04)
  for row, e in enumerate(examples):
    for t in range(frames):
      for k in range(per):
        axes[per * row + k, t].axis("off")
      if t >= len(e.frames):
        continue
      image = _enlarge(e.frames[t], size)
      axes[per * row, t].imshow(image)
      for k, method in enumerate(methods, start=1):
        peak = float(e.maps[method].max()) or 1.0
        heat = _enlarge((255 * e.maps[method][t] / peak).clip(0, 255).astype(np.uint8)[..., None],
                        size)[..., 0]
        ax = axes[per * row + k, t]
        ax.imshow(image)
        ax.imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=255)
    for k, method in enumerate(methods, start=1):
      axes[per * row + k, 0].text(-0.05, 0.5, METHOD_NAMES[method], rotation=90, fontsize=6,
                                  transform=axes[per * row + k, 0].transAxes, ha="right",
                                  va="center")
    mark = "right" if e.true == e.predicted else "WRONG"
    axes[per * row, 0].text(
        0, 1.04, f"{_short(e.uid)} (fold {_short(e.fold)}): true {e.true}, predicted "
        f"{e.predicted} [{mark}], motion ratio {e.motion_ratio:.2f}", fontsize=7,
        transform=axes[per * row, 0].transAxes, va="bottom")
  fig.suptitle(f"{title}: saliency for the predicted class over the view's frames (time left to "
               "right)", fontsize=9, y=1 - 0.15 / fig.get_figheight())
  _save_figure(fig, path)


def _plot_gallery(items: Sequence[GalleryItem], path: pathlib.Path, title: str,
                  size: int = 72) -> None:
  """Two clips per row, three thumbnails each, the clip named above its middle thumbnail."""
  per_row, columns = 2, 3
  rows = max(1, -(-len(items) // per_row))
  fig, axes = plt.subplots(rows, columns * per_row, squeeze=False, layout="constrained",
                           figsize=(10, 1.9 * rows + 0.5), dpi=100)
  for ax in axes.flat:
    ax.axis("off")
  for k, item in enumerate(items):
    r, c = divmod(k, per_row)
    for j, (thumb, caption) in enumerate(zip(item.thumbnails, item.captions)):
      ax = axes[r, c * columns + j]
      ax.axis("on")
      ax.set_xticks([])
      ax.set_yticks([])
      ax.imshow(_enlarge(thumb, size))
      ax.set_xlabel(caption, fontsize=7)
    axes[r, c * columns + 1].text(
        0.5, 1.06, f"{_short(item.uid)}: true {item.true}, predicted {item.predicted} "
        f"(p={item.confidence:.2f})", fontsize=7, ha="center", va="bottom",
        transform=axes[r, c * columns + 1].transAxes, in_layout=False)
  fig.suptitle(title, fontsize=9)
  _save_figure(fig, path)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
  body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                 for row in rows)
  return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
  if isinstance(value, float):
    return "n/a" if np.isnan(value) else f"{value:.3f}"
  return str(value)


def _metric_rows(entries: dict, extra: Sequence[str] = ()) -> list[list]:
  return [[name, e["n"], e["accuracy"], e["uar"], e["uf1"]] + [e[k] for k in extra]
          for name, e in entries.items()]


def _image(path: pathlib.Path, alt: str) -> str:
  data = base64.b64encode(path.read_bytes()).decode()
  return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
          f'<figcaption>{html.escape(alt)} (<code>{html.escape(path.name)}</code>)</figcaption>'
          "</figure>")


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;
padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}img{max-width:100%}figcaption{font-size:.8em;color:#555}
.note{background:#fff4d6;border-left:4px solid #e0a800;padding:.4em .8em}
.check{background:#e8f5e9;border-left:4px solid #43a047;padding:.4em .8em}
details{margin:.5em 0}pre{font-size:.75em;background:#f6f6f6;padding:.5em;overflow:auto}"""


def write_html(out: pathlib.Path, a: Analysis) -> pathlib.Path:
  """report.html (self-contained: PNGs embedded) with every PNG also written beside it."""
  out.mkdir(parents=True, exist_ok=True)
  figures = {}
  names = a.class_names
  figures["confusion"] = out / "confusion_pooled.png"
  plot_confusion(np.asarray(a.report["pooled"]["confusion"]), names, figures["confusion"],
                 f"{a.config['model']['name']}: pooled over\n{len(a.fold_names)} folds' test clips")
  for dataset, entry in a.report.get("per_dataset", {}).items():
    if len(a.report.get("per_dataset", {})) > 1:
      figures[f"confusion {dataset}"] = out / f"confusion_{dataset.replace('/', '_')}.png"
      plot_confusion(np.asarray(entry["confusion"]), names, figures[f"confusion {dataset}"],
                     f"{dataset}: test clips")
  figures["subjects"] = out / "per_subject_accuracy.png"
  _plot_per_subject(a.report, figures["subjects"], a.title)
  figures["curves"] = out / "learning_curves.png"
  plot_curves(a.history, figures["curves"], a.title, per_fold=True)
  cal = calibration(a.predictions.probabilities, a.labels)
  figures["reliability"] = out / "reliability.png"
  _plot_reliability(cal, figures["reliability"], a.title)
  coords, method = embed_2d(a.features, a.predictions.fold)
  figures["embedding"] = out / "embedding.png"
  _plot_embedding(coords, method, {"class": np.asarray(names)[a.labels],
                                   "dataset": a.datasets, "subject": a.subjects},
                  figures["embedding"], a.title)
  saliency_figures = []
  for cls in names:
    examples = [e for e in a.saliency if e.true == cls]
    if examples:
      path = out / f"saliency_{cls}.png"
      _plot_saliency(examples, path, f"true class {cls}: test clips")
      saliency_figures.append(path)
  if a.gallery:
    figures["gallery"] = out / "misclassified.png"
    _plot_gallery(a.gallery, figures["gallery"],
                  f"{len(a.gallery)} misclassified test clips (of "
                  f"{int((a.predictions.predicted != a.labels).sum())})")

  r = a.report
  ratios = a.motion_ratios[np.isfinite(a.motion_ratios)]
  parts = [f"<h1>{html.escape(a.title)}</h1>",
           f"<p>Run <code>{html.escape(a.workdir)}</code>. Every figure below is computed on the "
           "folds' <b>test</b> clips, each scored by its own fold's restored model, unless its "
           "title says otherwise.</p>"]
  synthetic = [d for d in a.config["data"]["datasets"] if d.startswith("synthetic_me")]
  if synthetic:
    parts.append(f'<p class="note">Data: {html.escape(", ".join(synthetic))}, the procedural '
                 "stand-in that ships with mejax, not a licensed dataset: these figures are not "
                 "comparable with any paper's.</p>")
  parts += [f'<p class="note">{html.escape(n)}</p>' for n in a.notes]
  parts += [f'<p class="check">{html.escape(c)}</p>' for c in a.checks]
  parts.append("<h2>Results</h2>")
  extra = [n for n in a.config.get("eval", {}).get("extra_metrics", ()) if n in EXTRA_METRICS]
  parts.append(_table(["", "n", "accuracy", "UAR", "UF1"] + extra,
                      _metric_rows({"pooled (MEGC convention)": r["pooled"]}, extra)
                      + _metric_rows(r.get("per_dataset", {}), extra)))
  summary = r.get("per_fold_mean_std")
  if summary:
    parts.append(f"<p>Mean ± std over {summary['num_folds']} folds (another aggregation, not the "
                 "pooled figure): " + ", ".join(
                     f"{label} {summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}"
                     for k, label in (("accuracy", "accuracy"), ("uar", "UAR"), ("uf1", "UF1")))
                 + "</p>")
  parts += [f'<p class="note">{html.escape(w)}</p>' for w in r.get("warnings", [])]
  parts.append(_image(figures["confusion"], "Confusion matrix, pooled"))
  parts += [_image(p, k) for k, p in figures.items() if k.startswith("confusion ")]
  parts.append("<h2>Per subject</h2>" + _image(figures["subjects"], "Accuracy per subject"))
  parts.append("<details><summary>Per-subject table</summary>"
               + _table(["subject", "n", "accuracy", "UAR", "UF1"],
                        _metric_rows(r.get("per_subject", {}))) + "</details>")
  parts.append("<h2>Per fold</h2><details><summary>Per-fold table</summary>"
               + _table(["fold", "n", "accuracy", "UAR", "UF1"],
                        _metric_rows(r.get("per_fold", {}))) + "</details>")
  parts.append("<h2>Learning curves</h2>" + _image(
      figures["curves"], "Training loss per fold and its mean; test scores recorded for reading "
      "only (no decision used them)"))
  parts.append("<h2>Calibration</h2>" + f"<p>Expected calibration error {cal['ece']:.3f} "
               f"(10 equal-width bins of the top-class probability, {cal['n']} test clips)."
               "</p>" + _image(figures["reliability"], "Reliability diagram"))
  parts.append("<h2>Embeddings</h2>" + f"<p>{html.escape(method)} of the penultimate features "
               "(the classification head's input, averaged over time and space). Each test clip's "
               "features come from its own fold's model, standardised within the fold; folds are "
               "different networks, so distances across folds are only roughly comparable (in "
               "LOSO a fold's test clips are one subject: clusters by subject show the folds' "
               "models as much as the subjects).</p>"
               + _image(figures["embedding"], "Embedding of the test clips"))
  methods = ", ".join(METHOD_NAMES[m] for m in a.saliency_methods)
  parts.append("<h2>Saliency</h2>" + f"<p>Maps: {html.escape(methods)}, for the predicted class. "
               "Grad-CAM weighs the model's last 3D conv block, whose map is coarse at small clip "
               "sizes; gradient x input is pixel-level. "
               + (f"Saliency-in-motion ratio of the gradient-x-input maps over {len(ratios)} test "
                  f"clips: median {np.median(ratios):.2f}, mean {np.mean(ratios):.2f} (the map's "
                  "mass inside the 10 % of pixels that moved most, sum over frames of |frame - "
                  "first frame|, divided by 10 %; 1 = no preference for moving pixels)."
                  if len(ratios) else "") + "</p>")
  parts += [_image(p, f"Saliency, {p.stem.split('_', 1)[1]}") for p in saliency_figures]
  if a.gallery:
    parts.append("<h2>Misclassified clips</h2>" + _image(figures["gallery"],
                                                          "Misclassified test clips"))
  parts.append("<h2>Config</h2><pre>" + html.escape(json.dumps(a.config, indent=1,
                                                                 sort_keys=True)) + "</pre>")
  page = ("<!doctype html><html><head><meta charset='utf-8'><title>"
          f"{html.escape(a.title)}</title><style>{_CSS}</style></head><body>"
          + "\n".join(parts) + "</body></html>")
  path = out / "report.html"
  files.write_atomic(path, page)
  return path
