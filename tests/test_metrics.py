"""Metrics against scikit-learn on pooled predictions, edge cases and the report's aggregations."""

import json
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from mejax import metrics


def _sklearn_reference(y_true, y_pred, num_classes):
  labels = list(range(num_classes))
  with warnings.catch_warnings():  # sklearn warns about classes absent from y_true / y_pred
    warnings.simplefilter('ignore')
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        'accuracy': skm.accuracy_score(y_true, y_pred),
        'uar': skm.balanced_accuracy_score(y_true, y_pred),
        'uf1': skm.f1_score(y_true, y_pred, average='macro', zero_division=0),
        'uf1_all_classes': skm.f1_score(y_true, y_pred, labels=labels, average='macro',
                                        zero_division=0),
        'micro_f1': skm.f1_score(y_true, y_pred, average='micro', zero_division=0),
        'precision': precision, 'recall': recall, 'f1': f1, 'support': support,
        'confusion': skm.confusion_matrix(y_true, y_pred, labels=labels),
    }


def _assert_matches_sklearn(y_true, y_pred, num_classes):
  ours = metrics.classification_metrics(y_true, y_pred, num_classes)
  reference = _sklearn_reference(y_true, y_pred, num_classes)
  for name in ('accuracy', 'uar', 'uf1', 'uf1_all_classes', 'micro_f1'):
    assert ours[name] == pytest.approx(reference[name], abs=1e-12), name
  for name in ('precision', 'recall', 'f1'):
    np.testing.assert_allclose(ours['per_class'][name], reference[name], atol=1e-12)
  np.testing.assert_array_equal(ours['support'], reference['support'])
  np.testing.assert_array_equal(ours['confusion'], reference['confusion'])
  # Where every class is evaluable, UF1 is the plain macro F1 over all C classes.
  if ours['classes_evaluated'] == num_classes:
    assert ours['uf1'] == pytest.approx(reference['uf1_all_classes'], abs=1e-12)
  assert ours['micro_f1'] == pytest.approx(ours['accuracy'])
  return ours


@pytest.mark.parametrize('seed', range(20))
def test_random_predictions_match_sklearn(seed):
  rng = np.random.default_rng(seed)
  num_classes = int(rng.integers(2, 6))
  num_samples = int(rng.integers(1, 60))
  y_true = rng.integers(0, num_classes, num_samples)
  # Biased towards the truth so figures are far from both 0 and 1.
  y_pred = np.where(rng.random(num_samples) < 0.5, y_true, rng.integers(0, num_classes,
                                                                        num_samples))
  _assert_matches_sklearn(y_true, y_pred, num_classes)


EDGE_CASES = {
    'class absent from y_true': ([0, 0, 1, 1], [0, 2, 1, 1]),
    'class never predicted': ([0, 1, 2, 2], [0, 1, 1, 1]),
    'class absent from both': ([0, 0, 1, 1], [0, 1, 1, 1]),
    'single class': ([1, 1, 1], [1, 1, 1]),
    'single class, wrong': ([2, 2], [0, 1]),
    'perfect': ([0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 2]),
    'all wrong': ([0, 1, 2, 0, 1, 2], [1, 2, 0, 2, 0, 1]),
    'single sample': ([2], [0]),
}


@pytest.mark.parametrize('y_true, y_pred', EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_edge_cases_match_sklearn_without_nan(y_true, y_pred):
  ours = _assert_matches_sklearn(np.array(y_true), np.array(y_pred), 3)
  json.dumps(ours, allow_nan=False)


def test_absent_class_conventions():
  # Class 2 absent from y_true and never predicted: left out of UAR and UF1.
  ours = metrics.classification_metrics([0, 0, 1, 1], [0, 0, 1, 1], 3)
  assert (ours['uar'], ours['uf1']) == (1.0, 1.0)
  assert ours['uf1_all_classes'] == pytest.approx(2 / 3)
  assert (ours['classes_covered'], ours['classes_evaluated']) == (2, 2)
  assert ours['confusion_normalised'][2] == [0.0, 0.0, 0.0]
  # Class 2 predicted although absent from y_true: its F1 of 0 counts, its recall does not.
  ours = metrics.classification_metrics([0, 0, 1, 1], [0, 2, 1, 1], 3)
  assert ours['uar'] == pytest.approx((0.5 + 1.0) / 2)
  assert ours['uf1'] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
  assert (ours['classes_covered'], ours['classes_evaluated']) == (2, 3)


def test_confusion_matrix_and_input_checks():
  confusion = metrics.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 4)
  np.testing.assert_array_equal(confusion, [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0],
                                            [0, 0, 0, 0]])
  normalised = np.array(metrics.classification_metrics([0, 1, 1, 2], [0, 1, 2, 2],
                                                       4)['confusion_normalised'])
  np.testing.assert_allclose(normalised.sum(axis=1), [1, 1, 1, 0])
  with pytest.raises(ValueError, match='outside'):
    metrics.confusion_matrix([0, 3], [0, 1], 3)
  with pytest.raises(ValueError, match='equal length'):
    metrics.confusion_matrix([0, 1], [0], 3)
  with pytest.raises(ValueError, match='integer'):
    metrics.confusion_matrix([0.0, 1.0], [0, 1], 3)
  with pytest.raises(ValueError, match='no predictions'):
    metrics.classification_metrics([], [], 3)


def test_metrics_by_name():
  y_true, y_pred = [0, 1, 2, 2, 1], [0, 2, 2, 2, 0]
  reference = _sklearn_reference(y_true, y_pred, 3)
  for name in ('accuracy', 'uar', 'uf1', 'micro_f1'):
    assert metrics.METRICS[name](y_true, y_pred, 3) == pytest.approx(reference[name])


# ------------------------------------------------------------------------------------------------
# evaluation_report


def _loso_like_predictions(seed=0):
  """3 datasets x 4 subjects; some subjects lack classes, as LOSO folds do."""
  rng = np.random.default_rng(seed)
  rows = []
  for dataset in ('casme2', 'samm', 'smic'):
    for subject in ('sub01', 'sub02', 'sub03', 'sub04'):
      classes = rng.choice(3, size=int(rng.integers(1, 4)), replace=False)
      for i in range(int(rng.integers(2, 8))):
        label = int(rng.choice(classes))
        prediction = label if rng.random() < 0.6 else int(rng.integers(0, 3))
        rows.append({'sample_id': f'{subject}/clip{i}', 'dataset': dataset, 'subject': subject,
                     'fold': f'loso:{dataset}/{subject}', 'label': label,
                     'prediction': prediction})
  return rows


def _assert_no_nan(value, where='report'):
  if isinstance(value, dict):
    for key, item in value.items():
      _assert_no_nan(item, f'{where}.{key}')
  elif isinstance(value, list):
    for i, item in enumerate(value):
      _assert_no_nan(item, f'{where}[{i}]')
  elif isinstance(value, float):
    assert math.isfinite(value), where


def test_report_pooled_per_dataset_per_subject():
  rows = _loso_like_predictions()
  report = metrics.evaluation_report(rows, 3, ['negative', 'positive', 'surprise'])
  json.dumps(report, allow_nan=False)
  _assert_no_nan(report)
  y_true = np.array([row['label'] for row in rows])
  y_pred = np.array([row['prediction'] for row in rows])
  assert report['pooled'] == metrics.classification_metrics(y_true, y_pred, 3)
  assert report['pooled']['uar'] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
  assert list(report['per_dataset']) == ['casme2', 'samm', 'smic']
  samm = np.array([row['dataset'] == 'samm' for row in rows])
  assert report['per_dataset']['samm'] == metrics.classification_metrics(y_true[samm],
                                                                         y_pred[samm], 3)
  assert len(report['per_subject']) == 12  # sub01 of three datasets = three subjects
  assert 'casme2/sub01' in report['per_subject']
  assert report['warnings'] == []


def test_report_per_fold_mean_std():
  rows = _loso_like_predictions(seed=1)
  report = metrics.evaluation_report(rows, 3)
  folds = sorted({row['fold'] for row in rows})
  assert sorted(report['per_fold']) == folds
  per_fold_uar, per_fold_accuracy, covered = [], [], []
  for fold in folds:
    y_true = [row['label'] for row in rows if row['fold'] == fold]
    y_pred = [row['prediction'] for row in rows if row['fold'] == fold]
    with warnings.catch_warnings():  # 'y_pred contains classes not in y_true'
      warnings.simplefilter('ignore')
      per_fold_uar.append(skm.balanced_accuracy_score(y_true, y_pred))
    per_fold_accuracy.append(skm.accuracy_score(y_true, y_pred))
    covered.append(len(set(y_true)))
    assert report['per_fold'][fold]['classes_covered'] == len(set(y_true))
  summary = report['per_fold_mean_std']
  assert summary['num_folds'] == len(folds)
  assert 'NOT the pooled' in summary['aggregation']
  assert summary['uar']['mean'] == pytest.approx(np.mean(per_fold_uar))
  assert summary['uar']['std'] == pytest.approx(np.std(per_fold_uar))
  assert summary['accuracy']['mean'] == pytest.approx(np.mean(per_fold_accuracy))
  assert summary['accuracy']['std'] == pytest.approx(np.std(per_fold_accuracy))
  assert summary['folds_missing_classes'] == sum(c < 3 for c in covered) > 0
  _assert_no_nan(report)


def test_report_accepts_columns_and_flags_repeats_and_warnings():
  rows = _loso_like_predictions(seed=2)
  columns = {name: [row[name] for row in rows] for name in rows[0]}
  assert metrics.evaluation_report(columns, 3) == metrics.evaluation_report(rows, 3)
  minimal = metrics.evaluation_report({'label': [0, 1], 'prediction': [0, 0]}, 2)
  assert set(minimal) == {'num_classes', 'class_names', 'pooled', 'warnings'}
  repeated = rows + [dict(rows[0], fold='holdout:1')]
  report = metrics.evaluation_report(repeated, 3,
                                     warnings=['best epoch selected on the test fold'])
  assert report['warnings'][0] == 'best epoch selected on the test fold'
  assert 'several folds' in report['warnings'][1]
  with pytest.raises(ValueError, match='prediction'):
    metrics.evaluation_report({'label': [0]}, 3)
  with pytest.raises(ValueError, match='class names'):
    metrics.evaluation_report(rows, 3, ['a', 'b'])


def test_format_result_table():
  report = metrics.evaluation_report(_loso_like_predictions(), 3,
                                     warnings=['best epoch selected on the test fold'])
  table = metrics.format_result_table(report)
  pooled = report['pooled']
  assert f"{pooled['uar']:.4f}" in table and f"{pooled['uf1']:.4f}" in table
  assert 'per-fold mean ± std over 12 folds' in table
  for dataset in ('casme2', 'samm', 'smic'):
    assert f'  {dataset}' in table
  assert table.splitlines()[-1] == 'WARNING: best epoch selected on the test fold'
