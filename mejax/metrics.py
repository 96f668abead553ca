"""Micro-expression recognition metrics: pooled over folds (MEGC), per fold/dataset/subject.

Conventions (all figures are plain floats, never NaN):

* Predictions are pooled over all folds first (MEGC convention); the confusion matrix has true
  classes in rows and predicted classes in columns.
* accuracy = correct / total.
* UAR = mean per-class recall over the classes *present in y_true* (support > 0). This is
  exactly sklearn's `balanced_accuracy_score`: a class nobody belongs to has no recall.
* UF1 = mean per-class F1 = 2TP / (2TP + FP + FN), TP/FP/FN taken from the pooled confusion
  matrix, over the classes that are *evaluable*: present in y_true or predicted at least once.
  A class predicted but absent from y_true has F1 = 0 (its false positives count against the
  model); a class absent from both has F1 = 0/0 and is left out, as in the widely used MEGC2019
  evaluation script (its per-class confusion matrix degenerates and the class is skipped). This
  equals sklearn's `f1_score(average='macro', zero_division=0)` with its default labels
  (classes in y_true or y_pred), and `f1_score(labels=range(C), average='macro',
  zero_division=0)` whenever every class is evaluable (always so for the pooled MEGC composite).
* `uf1_all_classes` = the strict (1/C) sum over all C classes with 0 for non-evaluable ones
  (= sklearn `labels=range(C), zero_division=0`); lower than UF1 when a class is missing.
* `micro_f1` (STRCN, Xia et al. 2019): P = sum TP / sum (TP + FP), R = sum TP / sum (TP + FN),
  F = 2PR / (P + R). For single-label predictions it equals accuracy.
* Per-class recall / precision / F1 with a zero denominator are reported as 0.0 (sklearn's
  zero_division=0); `support`, `predicted` and `classes_covered` say which entries are real.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from mejax.protocols import natural_key


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
  """int64 [C, C] counts; rows = true class, columns = predicted class."""
  y_true, y_pred = _checked_labels(y_true, y_pred, num_classes)
  return np.bincount(y_true * num_classes + y_pred,
                     minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _checked_labels(y_true, y_pred, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
  if y_true.ndim != 1 or y_true.shape != y_pred.shape:
    raise ValueError(f'y_true and y_pred must be 1-D of equal length, got shapes {y_true.shape} '
                     f'and {y_pred.shape}')
  for name, values in (('y_true', y_true), ('y_pred', y_pred)):
    if values.size and not np.issubdtype(values.dtype, np.integer):
      raise ValueError(f'{name} must hold integer class ids, got dtype {values.dtype}')
    if values.size and (values.min() < 0 or values.max() >= num_classes):
      raise ValueError(f'{name} has class ids outside [0, {num_classes}): '
                       f'{sorted(set(values[(values < 0) | (values >= num_classes)].tolist()))}')
  return y_true.astype(np.int64), y_pred.astype(np.int64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
  """numerator / denominator with 0 where the denominator is 0 (no NaN, no warning)."""
  numerator = np.asarray(numerator, dtype=np.float64)
  return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                   where=np.asarray(denominator) > 0)


def metrics_from_confusion(confusion: np.ndarray) -> dict[str, Any]:
  """All figures of `classification_metrics` from a [C, C] confusion matrix."""
  confusion = np.asarray(confusion, dtype=np.int64)
  num_samples = int(confusion.sum())
  if num_samples == 0:
    raise ValueError('no predictions to score')
  support = confusion.sum(axis=1)
  predicted = confusion.sum(axis=0)
  true_positives = np.diag(confusion)
  false_positives = predicted - true_positives
  false_negatives = support - true_positives
  recall = _ratio(true_positives, support)
  precision = _ratio(true_positives, predicted)
  f1 = _ratio(2 * true_positives, 2 * true_positives + false_positives + false_negatives)
  present = support > 0
  evaluable = (support + predicted) > 0
  micro_precision = _ratio(true_positives.sum(), (true_positives + false_positives).sum())
  micro_recall = _ratio(true_positives.sum(), (true_positives + false_negatives).sum())
  micro_f1 = _ratio(2 * micro_precision * micro_recall, micro_precision + micro_recall)
  return {
      'n': num_samples,
      'accuracy': float(true_positives.sum() / num_samples),
      'uar': float(recall[present].mean()),
      'uf1': float(f1[evaluable].mean()),
      'uf1_all_classes': float(f1.mean()),
      'micro_f1': float(micro_f1),
      'classes_covered': int(present.sum()),
      'classes_evaluated': int(evaluable.sum()),
      'support': support.tolist(),
      'predicted': predicted.tolist(),
      'per_class': {'recall': recall.tolist(), 'precision': precision.tolist(), 'f1': f1.tolist()},
      'confusion': confusion.tolist(),
      'confusion_normalised': _ratio(confusion, support[:, None]).tolist(),
  }


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           num_classes: int) -> dict[str, Any]:
  """accuracy, uar, uf1 (+ uf1_all_classes, micro_f1), per-class figures and confusion matrices.

  Keys: n, accuracy, uar, uf1, uf1_all_classes, micro_f1, classes_covered (classes with support),
  classes_evaluated (with support or predictions), support, predicted, per_class {recall,
  precision, f1}, confusion, confusion_normalised (row-normalised; zero rows for absent classes).
  """
  return metrics_from_confusion(confusion_matrix(y_true, y_pred, num_classes))


def _metric(name: str) -> Callable[[Sequence[int], Sequence[int], int], float]:
  return lambda y_true, y_pred, num_classes: classification_metrics(
      y_true, y_pred, num_classes)[name]


# Metrics by name, e.g. METRICS['micro_f1'](y_true, y_pred, num_classes) for STRCN's F1.
METRICS: dict[str, Callable[[Sequence[int], Sequence[int], int], float]] = {
    name: _metric(name) for name in ('accuracy', 'uar', 'uf1', 'uf1_all_classes', 'micro_f1')}

# Figures summarised over folds in `per_fold_mean_std` and shown by `format_result_table`.
SUMMARY_METRICS = ('accuracy', 'uar', 'uf1')


# ------------------------------------------------------------------------------------------------
# Reports over a predictions table.

def _as_columns(predictions: Any) -> dict[str, np.ndarray]:
  """A dict of arrays, a list of row dicts or a DataFrame -> dict of equal-length arrays."""
  if hasattr(predictions, 'columns') and not isinstance(predictions, Mapping):  # DataFrame
    columns = {str(name): np.asarray(predictions[name]) for name in predictions.columns}
  elif isinstance(predictions, Mapping):
    columns = {name: np.asarray(values) for name, values in predictions.items()}
  else:
    rows = list(predictions)
    if not rows:
      raise ValueError('empty predictions table')
    columns = {name: np.asarray([row[name] for row in rows]) for name in rows[0]}
  for required in ('label', 'prediction'):
    if required not in columns:
      raise ValueError(f'predictions table lacks column {required!r}; has {sorted(columns)}')
  lengths = {name: len(values) for name, values in columns.items()}
  if len(set(lengths.values())) != 1:
    raise ValueError(f'predictions columns differ in length: {lengths}')
  return columns


def _grouped_metrics(keys: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                     num_classes: int) -> dict[str, dict[str, Any]]:
  groups = collections.defaultdict(list)
  for i, key in enumerate(keys.tolist()):
    groups[str(key)].append(i)
  return {key: classification_metrics(y_true[groups[key]], y_pred[groups[key]], num_classes)
          for key in sorted(groups, key=natural_key)}


def _mean_std_over_folds(per_fold: Mapping[str, Mapping[str, Any]],
                         num_classes: int) -> dict[str, Any]:
  summary: dict[str, Any] = {
      'aggregation': 'mean and population std (ddof=0) over folds of per-fold metrics; '
                     'NOT the pooled MEGC figures',
      'num_folds': len(per_fold),
      'folds_missing_classes': sum(
          entry['classes_covered'] < num_classes for entry in per_fold.values()),
  }
  for name in SUMMARY_METRICS:
    values = np.array([entry[name] for entry in per_fold.values()], dtype=np.float64)
    summary[name] = {'mean': float(values.mean()), 'std': float(values.std())}
  return summary


def evaluation_report(predictions: Any, num_classes: int,
                      class_names: Sequence[str] | None = None, *,
                      warnings: Iterable[str] = ()) -> dict[str, Any]:
  """Pooled (MEGC), per-dataset, per-subject and per-fold metrics of a predictions table.

  `predictions`: columns label and prediction (int class ids), and optionally sample_id, dataset,
  subject, fold; as a dict of arrays, a list of row dicts or a DataFrame. Sections whose column is
  absent are left out. `warnings` are copied into the report (e.g. "best epoch selected on the test
  fold"). Returns a JSON-serialisable dict of plain ints, floats, strings and lists.
  """
  columns = _as_columns(predictions)
  y_true, y_pred = _checked_labels(columns['label'], columns['prediction'], num_classes)
  if class_names is None:
    class_names = [str(label) for label in range(num_classes)]
  if len(class_names) != num_classes:
    raise ValueError(f'{len(class_names)} class names for {num_classes} classes')
  report: dict[str, Any] = {
      'num_classes': num_classes,
      'class_names': list(class_names),
      'pooled': classification_metrics(y_true, y_pred, num_classes),
  }
  notes = list(warnings)
  if 'sample_id' in columns:
    sample_ids = columns['sample_id'].astype(str)
    if 'dataset' in columns:  # sample ids are only unique within a dataset
      sample_ids = np.char.add(np.char.add(columns['dataset'].astype(str), '/'), sample_ids)
    repeated = [sample_id for sample_id, count in collections.Counter(
        sample_ids.tolist()).items() if count > 1]
    if repeated:  # e.g. repeated hold-out: pooled figures then count a sample once per fold
      notes.append(f'{len(repeated)} sample(s) predicted in several folds (e.g. {repeated[0]}); '
                   'pooled metrics count them once per fold')
  if 'dataset' in columns:
    report['per_dataset'] = _grouped_metrics(columns['dataset'], y_true, y_pred, num_classes)
  if 'subject' in columns:
    subjects = columns['subject'].astype(str)
    if 'dataset' in columns:  # subjects are keyed by (dataset, subject)
      subjects = np.char.add(np.char.add(columns['dataset'].astype(str), '/'), subjects)
    report['per_subject'] = _grouped_metrics(subjects, y_true, y_pred, num_classes)
  if 'fold' in columns:
    report['per_fold'] = _grouped_metrics(columns['fold'], y_true, y_pred, num_classes)
    report['per_fold_mean_std'] = _mean_std_over_folds(report['per_fold'], num_classes)
  report['warnings'] = notes
  return report


def format_result_table(report: Mapping[str, Any], digits: int = 4) -> str:
  """A short console table: pooled and per-dataset accuracy / UAR / UF1 (and the report's
  "extra_metrics", e.g. micro_f1), per-fold mean ± std."""
  rows = [('pooled (all folds)', report['pooled'])]
  rows += [(f'  {name}', entry) for name, entry in report.get('per_dataset', {}).items()]
  label_width = max(len(label) for label, _ in rows)
  extra = tuple(report.get('extra_metrics', {}))
  titles = ('accuracy', 'UAR', 'UF1') + extra
  columns = SUMMARY_METRICS + extra
  widths = [max(len(title), digits + 2) for title in titles]
  lines = [f"{'':<{label_width}}  {'n':>5}" + ''.join(
      f'  {title:>{width}}' for title, width in zip(titles, widths))]
  for label, entry in rows:
    lines.append(f"{label:<{label_width}}  {entry['n']:>5}" + ''.join(
        f'  {entry[name]:>{width}.{digits}f}' for name, width in zip(columns, widths)))
  summary = report.get('per_fold_mean_std')
  if summary:
    lines.append(f"per-fold mean ± std over {summary['num_folds']} folds (a different aggregation"
                 f", not pooled; {summary['folds_missing_classes']} fold(s) lack a class):")
    lines.append('  ' + '   '.join(
        f"{title} {summary[name]['mean']:.{digits}f} ± {summary[name]['std']:.{digits}f}"
        for title, name in zip(titles, SUMMARY_METRICS)))
  lines += [f'WARNING: {note}' for note in report.get('warnings', [])]
  return '\n'.join(lines)
