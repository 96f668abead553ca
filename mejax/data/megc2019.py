"""The MEGC2019 composite (CDE): membership and labels from the challenge's ground truth.

`combined_3class_gt.csv` (shipped, see protocol_files/README.md) names the 442 samples of SMIC
(HS), CASME II and SAMM and their 3-class labels. This module reads it and matches it against any
clip metadata with `dataset`, `subject`, `label` and `sample_id` arrays (a ClipSet, or the records
of the annotation parsers); `mejax.data.composites` selects a ClipSet with it and
`mejax.protocols` builds the composite's LOSO folds.
"""

from __future__ import annotations

import collections
import csv
import pathlib
import re
from typing import Any, NamedTuple, Sequence

import numpy as np


MEGC2019_CLASSES = ('negative', 'positive', 'surprise')
MEGC2019_DATASETS = ('smic', 'casme2', 'samm')
MEGC2019_NUM_SAMPLES = 442
# The official ground truth, shipped with mejax (see mejax/data/protocol_files/README.md).
MEGC2019_CSV = (pathlib.Path(__file__).parent / 'protocol_files'
                / 'megc2019_combined_3class_gt.csv')
# Dataset names a ClipSet may use for the three parts (lower case).
MEGC2019_DATASET_ALIASES = {
    'smic': 'smic', 'smic_hs': 'smic', 'smic-hs': 'smic', 'smichs': 'smic',
    'casme2': 'casme2', 'casme_ii': 'casme2', 'casmeii': 'casme2', 'casme-ii': 'casme2',
    'samm': 'samm',
}


class MembershipRow(NamedTuple):
  dataset: str
  subject: str
  filename: str
  label: int


def megc2019_membership(csv_path: str | pathlib.Path = MEGC2019_CSV,
                        expected_rows: int | None = MEGC2019_NUM_SAMPLES) -> list[MembershipRow]:
  """Reads `dataset,subject,filename,label` rows (no header); raises naming file and row."""
  csv_path = pathlib.Path(csv_path)
  rows, seen = [], {}
  with csv_path.open(newline='') as f:
    for line_number, fields in enumerate(csv.reader(f), start=1):
      fields = [field.strip() for field in fields]
      if not any(fields):
        continue  # blank (e.g. trailing) line
      if line_number == 1 and fields == ['dataset', 'subject', 'filename', 'label']:
        continue  # tolerate a header
      where = f'{csv_path}: row {line_number} {",".join(fields)!r}'
      if len(fields) != 4:
        raise ValueError(f'{where}: expected 4 fields dataset,subject,filename,label, '
                         f'got {len(fields)}')
      dataset, subject, filename, label = fields
      if dataset not in MEGC2019_DATASETS:
        raise ValueError(f'{where}: dataset {dataset!r} not in {MEGC2019_DATASETS}')
      if not subject or not filename:
        raise ValueError(f'{where}: empty subject or filename')
      if label not in ('0', '1', '2'):
        raise ValueError(f'{where}: label {label!r} not in {{0, 1, 2}}')
      key = megc2019_key(dataset, subject, filename)
      if key in seen:
        raise ValueError(f'{where}: duplicate of row {seen[key]}')
      seen[key] = line_number
      rows.append(MembershipRow(dataset, subject, filename, int(label)))
  if expected_rows is not None and len(rows) != expected_rows:
    raise ValueError(f'{csv_path}: {len(rows)} rows, expected {expected_rows}')
  return rows


def _subject_number(subject: str) -> int | str:
  # 'sub01', 's1', '006' and '6' name the same subject in different sources.
  match = re.fullmatch(r'[A-Za-z_]*0*(\d+)', subject.strip())
  return int(match.group(1)) if match else subject.strip().lower()


def megc2019_key(dataset: str, subject: str, filename: str) -> tuple:
  if dataset == 'smic':  # raw SMIC names clips 's1_ne_01', the MEGC file 's01_ne_01'
    filename = re.sub(r'^s0*(\d+)_', lambda m: f's{int(m.group(1)):02d}_', filename)
  return dataset, _subject_number(subject), filename


def megc2019_mask(meta: Any, membership: Sequence[MembershipRow], *,
                  datasets: Sequence[str] | None = None, check_labels: bool = True) -> np.ndarray:
  """bool[N]: which clips of `meta` belong to the MEGC2019 composite.

  Clips are matched on (dataset, subject number, filename), the filename being the last '/'
  component of the sample id; dataset names go through MEGC2019_DATASET_ALIASES. Raises ValueError
  when a membership row (of `datasets`, default all three) has no clip or several, or when a
  clip's label differs from the composite's (`check_labels`, labels in MEGC2019_CLASSES order).
  """
  datasets = set(datasets or MEGC2019_DATASETS)
  index = collections.defaultdict(list)
  meta_labels = np.asarray(meta.label)
  columns = [np.asarray(values, dtype=str).tolist()
             for values in (meta.dataset, meta.subject, meta.sample_id)]
  for i, (dataset, subject, sample_id) in enumerate(zip(*columns)):
    dataset = MEGC2019_DATASET_ALIASES.get(dataset.lower())
    if dataset is not None:
      index[megc2019_key(dataset, subject, sample_id.rsplit('/', 1)[-1])].append(i)
  mask = np.zeros(len(meta_labels), dtype=bool)
  missing, ambiguous, wrong_label = [], [], []
  for row in membership:
    if row.dataset not in datasets:
      continue
    name = f'{row.dataset}/{row.subject}/{row.filename}'
    matches = index.get(megc2019_key(row.dataset, row.subject, row.filename), [])
    if not matches:
      missing.append(name)
    elif len(matches) > 1:
      ambiguous.append(name)
    else:
      mask[matches[0]] = True
      if check_labels and int(meta_labels[matches[0]]) != row.label:
        wrong_label.append(f'{name} (clip {int(meta_labels[matches[0]])}, MEGC {row.label})')
  problems = [f'{len(items)} {what}: {items[:10]}' for what, items in (
      ('membership rows without a clip', missing), ('rows matching several clips', ambiguous),
      ('label mismatches', wrong_label)) if items]
  if problems:
    raise ValueError('ClipSet does not match the MEGC2019 composite: ' + '; '.join(problems))
  return mask


def check_megc2019_clipset(meta: Any, membership: Sequence[MembershipRow]):
  """Raises ValueError unless `meta` is exactly the composite (442 clips, MEGC labels)."""
  mask = megc2019_mask(meta, membership)
  if not mask.all():
    extra = np.char.add(np.char.add(np.asarray(meta.dataset, dtype=str), '/'),
                        np.asarray(meta.sample_id, dtype=str))[~mask]
    raise ValueError(f'ClipSet has {len(extra)} clip(s) outside the MEGC2019 composite: '
                     f'{extra[:10].tolist()}')
