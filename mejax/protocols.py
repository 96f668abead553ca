"""Evaluation protocols: clip metadata -> boolean fold masks `train/val/test[F, N]`.

Protocols (`FoldSpec.name`), one fold list each:

* `loso`: leave one subject out; one fold per subject. Subjects are keyed by (dataset, subject),
  so `s01` of SMIC and `sub01` of CASME II never merge and `sub01` of two datasets are two
  subjects. MEGC2019 CDE = `loso` over the ClipSet selected with `megc2019_mask` (68 folds).
* `lovo`: leave one video (= one clip) out; one fold per sample. The STRCN variant "5 % of
  videos per test fold" is `kfold` with `k=20, grouped=False`.
* `kfold`: stratified k-fold on the label; `grouped=True` keeps each subject on one side.
* `holdout`: stratified train/test split (`test_fraction`), repeated `repeats` times; repeat r
  uses a seed derived from (seed, r), so it does not depend on how many repeats were asked for.
* `cross_dataset`: train on `train_datasets`, test on `test_datasets` (one fold).

Validation inside a fold is carved out of that fold's *training* samples only, so it can never
hold a test sample (and, in subject-independent protocols, never a test subject):
`val_subjects=n` moves n whole training subjects (none of which appear in the fold's test set),
`val_fraction=f` moves a stratified fraction f of the training samples. Default: no validation.

Sample ids in `Folds` are qualified by dataset ("casme2/sub01/EP02_01f", = `ClipSet.uid`)
because the clip schema only makes them unique within a dataset.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
import warnings
import zlib
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np
from sklearn import model_selection

from mejax.data.megc2019 import MembershipRow


class ClipMetadata(Protocol):
  """What the protocols read from a ClipSet: parallel arrays of length N."""
  dataset: Sequence[str]
  subject: Sequence[str]
  label: Sequence[int]
  sample_id: Sequence[str]


@dataclasses.dataclass(frozen=True, eq=False)
class ClipMeta:
  """A minimal ClipMetadata (tests, MEGC2019 membership); the real ClipSet lives in mejax.data."""
  dataset: np.ndarray
  subject: np.ndarray
  label: np.ndarray
  sample_id: np.ndarray

  @classmethod
  def from_arrays(cls, dataset, subject, label, sample_id) -> ClipMeta:
    return cls(np.asarray(dataset, dtype=str), np.asarray(subject, dtype=str),
               np.asarray(label, dtype=np.int64), np.asarray(sample_id, dtype=str))


# ------------------------------------------------------------------------------------------------
# Protocol configuration.

@dataclasses.dataclass(frozen=True)
class FoldSpec:
  """Which protocol and how; built from kwargs, a dict or an ml_collections ConfigDict."""
  name: str = 'loso'
  k: int = 5                      # kfold
  grouped: bool = False           # kfold / holdout: keep each subject on one side
  repeats: int = 1                # holdout
  test_fraction: float = 0.2      # holdout
  seed: int = 0
  val_subjects: int = 0           # whole training subjects moved to validation per fold
  val_fraction: float = 0.0       # stratified fraction of training samples moved to validation
  train_datasets: tuple[str, ...] = ()  # cross_dataset
  test_datasets: tuple[str, ...] = ()   # cross_dataset

  def __post_init__(self):
    # Lists from a config file become tuples so the spec stays hashable.
    object.__setattr__(self, 'train_datasets', tuple(self.train_datasets))
    object.__setattr__(self, 'test_datasets', tuple(self.test_datasets))
    if self.name not in PROTOCOLS:
      raise ValueError(f'unknown protocol {self.name!r} (protocol.name); known: '
                       f'{sorted(PROTOCOLS)}')
    checks = (('k', self.k >= 2, 'an integer >= 2'),
              ('repeats', self.repeats >= 1, 'an integer >= 1'),
              ('test_fraction', 0.0 < self.test_fraction < 1.0, 'in (0, 1)'),
              ('seed', self.seed >= 0, '>= 0'),
              ('val_subjects', self.val_subjects >= 0, '>= 0'),
              ('val_fraction', 0.0 <= self.val_fraction < 1.0, 'in [0, 1)'))
    for key, ok, allowed in checks:
      if not ok:
        raise ValueError(f'protocol.{key}={getattr(self, key)!r}: must be {allowed}')
    if self.val_subjects and self.val_fraction:
      raise ValueError('set protocol.val_subjects or protocol.val_fraction, not both')

  @classmethod
  def from_config(cls, config: Any = None, **overrides) -> FoldSpec:
    """Accepts a FoldSpec, a Mapping, an ml_collections ConfigDict (anything with to_dict())."""
    if isinstance(config, FoldSpec):
      values = dataclasses.asdict(config)
    elif config is None:
      values = {}
    elif hasattr(config, 'to_dict'):
      values = dict(config.to_dict())
    else:
      values = dict(config)
    values.update(overrides)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:  # a typo in a config must not silently fall back to a default
      raise ValueError(f'unknown FoldSpec keys {unknown} (protocol.*); known: {sorted(known)}')
    return cls(**values)

  @property
  def subject_independent(self) -> bool:
    """True when no subject may appear on both sides of a fold."""
    return self.name in ('loso', 'cross_dataset') or (
        self.name in ('kfold', 'holdout') and self.grouped)

  @property
  def tests_every_sample_once(self) -> bool:
    return self.name in ('loso', 'lovo', 'kfold')


# ------------------------------------------------------------------------------------------------
# Folds.

@dataclasses.dataclass(frozen=True, eq=False)
class Folds:
  """Boolean masks over the N samples of a ClipSet, one row per fold.

  `sample_ids` are dataset-qualified ("casme2/sub01/EP02_01f"); `subjects` are subject keys
  ("casme2/sub01"). Both are stored so a later loader can check it has the same ClipSet.
  """
  protocol: str
  names: list[str]
  # repr=False: a repr that prints [F, N] masks would drown error messages.
  train: np.ndarray = dataclasses.field(repr=False)  # bool [F, N]
  val: np.ndarray = dataclasses.field(repr=False)    # bool [F, N]
  test: np.ndarray = dataclasses.field(repr=False)   # bool [F, N]
  sample_ids: np.ndarray = dataclasses.field(repr=False)  # str [N]
  subjects: np.ndarray = dataclasses.field(repr=False)    # str [N]
  spec: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    object.__setattr__(self, 'names', list(self.names))
    for field in ('train', 'val', 'test'):
      mask = np.array(getattr(self, field), dtype=bool, copy=True)
      mask.setflags(write=False)  # frozen means the masks too
      object.__setattr__(self, field, mask)
    for field in ('sample_ids', 'subjects'):
      values = np.array(getattr(self, field), dtype=str, copy=True)
      values.setflags(write=False)
      object.__setattr__(self, field, values)

  @property
  def num_folds(self) -> int:
    return len(self.names)

  @property
  def num_samples(self) -> int:
    return len(self.sample_ids)

  def fold_index(self, name: str) -> int:
    return self.names.index(name)

  def validate(self) -> Folds:
    """Checks the invariants; raises ValueError naming the fold and offending sample ids."""
    num_folds, num_samples = len(self.names), len(self.sample_ids)
    for field in ('train', 'val', 'test'):
      if getattr(self, field).shape != (num_folds, num_samples):
        raise ValueError(f'{field} mask has shape {getattr(self, field).shape}, '
                         f'expected {(num_folds, num_samples)}')
    if len(self.subjects) != num_samples:
      raise ValueError(f'{len(self.subjects)} subjects for {num_samples} samples')
    _raise_on_duplicates(self.names, 'fold names')
    _raise_on_duplicates(self.sample_ids, 'sample ids')
    spec = FoldSpec.from_config(self.spec) if self.spec else FoldSpec(name=self.protocol)

    for i, name in enumerate(self.names):
      train, val, test = self.train[i], self.val[i], self.test[i]
      where = f'fold {i} {name!r}'
      for (a_name, a), (b_name, b) in (
          (('train', train), ('test', test)), (('train', train), ('val', val)),
          (('val', val), ('test', test))):
        self._raise_if_any(a & b, f'{where}: {a_name} and {b_name} share samples')
      if not test.any():
        raise ValueError(f'{where}: empty test set')
      if not train.any():
        raise ValueError(f'{where}: empty training set')

      test_subjects = set(self.subjects[test])
      if spec.name == 'loso' and len(test_subjects) != 1:
        raise ValueError(f'{where}: a LOSO test fold must hold exactly one subject, '
                         f'got {sorted(test_subjects)}')
      if spec.subject_independent:
        leaked = (train | val) & np.isin(self.subjects, list(test_subjects))
        self._raise_if_any(leaked, f'{where}: test subject(s) also in train/val')
      if spec.val_subjects:
        # Validation subjects are moved whole: none of their samples stay in train or test.
        val_subjects = list(set(self.subjects[val]))
        split = (train | test) & np.isin(self.subjects, val_subjects)
        self._raise_if_any(split, f'{where}: validation subject(s) also in train/test')

    if spec.tests_every_sample_once:
      times_tested = self.test.sum(axis=0)
      self._raise_if_any(times_tested != 1,
                         f'{self.protocol}: samples not tested exactly once '
                         f'(tested {sorted(set(times_tested[times_tested != 1].tolist()))} times)')
    return self

  def _raise_if_any(self, offending: np.ndarray, message: str):
    if offending.any():
      ids = self.sample_ids[offending]
      shown = ', '.join(ids[:10].tolist()) + (' ...' if len(ids) > 10 else '')
      raise ValueError(f'{message}: {len(ids)} sample(s): {shown}')

  def check_matches(self, meta: ClipMetadata):
    """Raises ValueError unless `meta` has the same samples and subjects, in the same order."""
    view = _MetaView.of(meta)
    if view.sample_keys.shape != self.sample_ids.shape or np.any(
        view.sample_keys != self.sample_ids):
      differ = sorted(set(view.sample_keys.tolist()) ^ set(self.sample_ids.tolist()))
      raise ValueError(f'ClipSet does not match the folds: {len(view.sample_keys)} vs '
                       f'{len(self.sample_ids)} samples; ids in only one: {differ[:10]}'
                       + (' (same ids, different order)' if not differ else ''))
    if np.any(view.subject_keys != self.subjects):
      raise ValueError('ClipSet does not match the folds: subjects differ')

  def to_json(self, sample_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """The content of folds.json (a JSON-ready dict): each fold's train/val/test sample ids.

    `sample_ids`, when given (e.g. `ClipSet.uid`), must be this Folds' qualified sample ids in
    order; it guards against writing folds made for another ClipSet.
    """
    if sample_ids is not None and list(sample_ids) != self.sample_ids.tolist():
      raise ValueError('to_json: the given sample ids are not the ones these folds were made for')
    folds = []
    for i, name in enumerate(self.names):
      folds.append({'name': name} | {part: self.sample_ids[getattr(self, part)[i]].tolist()
                                     for part in ('train', 'val', 'test')})
    return {
        'protocol': self.protocol,
        'spec': _jsonable(self.spec),
        'sample_ids': self.sample_ids.tolist(),
        'subjects': self.subjects.tolist(),
        'folds': folds,
    }

  @classmethod
  def from_json(cls, data: Mapping[str, Any] | str) -> Folds:
    """Folds from `to_json()`'s dict or its JSON text; re-validated."""
    data = json.loads(data) if isinstance(data, str) else data
    sample_ids = np.asarray(data['sample_ids'], dtype=str)
    position = {sample_id: i for i, sample_id in enumerate(data['sample_ids'])}
    masks = {part: np.zeros((len(data['folds']), len(sample_ids)), dtype=bool)
             for part in ('train', 'val', 'test')}
    for i, fold in enumerate(data['folds']):
      for part, mask in masks.items():
        unknown = [sample_id for sample_id in fold[part] if sample_id not in position]
        if unknown:
          raise ValueError(f'fold {fold["name"]!r}: {part} lists unknown sample ids {unknown[:10]}')
        mask[i, [position[sample_id] for sample_id in fold[part]]] = True
    return cls(protocol=data['protocol'], names=[fold['name'] for fold in data['folds']],
               sample_ids=sample_ids, subjects=np.asarray(data['subjects'], dtype=str),
               spec=data.get('spec', {}), **masks).validate()


def _raise_on_duplicates(values: Iterable[str], what: str):
  counts = collections.Counter(values)
  duplicated = sorted(value for value, count in counts.items() if count > 1)
  if duplicated:
    raise ValueError(f'duplicate {what}: {duplicated[:10]}')


def _jsonable(value):
  if isinstance(value, dict):
    return {key: _jsonable(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(item) for item in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


# ------------------------------------------------------------------------------------------------
# Making folds.

@dataclasses.dataclass(frozen=True)
class _MetaView:
  """Metadata as numpy arrays plus the keys the protocols group by."""
  dataset: np.ndarray
  subject: np.ndarray
  label: np.ndarray
  sample_keys: np.ndarray   # "dataset/sample_id"
  subject_keys: np.ndarray  # "dataset/subject"
  subject_group: np.ndarray  # int id per (dataset, subject), numbered in natural order

  @classmethod
  def of(cls, meta: ClipMetadata) -> _MetaView:
    dataset = np.asarray(meta.dataset, dtype=str)
    subject = np.asarray(meta.subject, dtype=str)
    label = np.asarray(meta.label)
    sample_id = np.asarray(meta.sample_id, dtype=str)
    lengths = {len(dataset), len(subject), len(label), len(sample_id)}
    if len(lengths) != 1:
      raise ValueError(f'metadata arrays differ in length: dataset {len(dataset)}, subject '
                       f'{len(subject)}, label {len(label)}, sample_id {len(sample_id)}')
    if not len(dataset):
      raise ValueError('empty metadata')
    if not np.issubdtype(label.dtype, np.integer):
      raise ValueError(f'labels must be integers, got dtype {label.dtype}')
    # Group by the (dataset, subject) pair itself, not by a joined string that could collide.
    pairs = list(zip(dataset.tolist(), subject.tolist()))
    ordered = sorted(set(pairs), key=lambda pair: (natural_key(pair[0]), natural_key(pair[1])))
    group_of = {pair: i for i, pair in enumerate(ordered)}
    return cls(
        dataset=dataset, subject=subject, label=label.astype(np.int64),
        sample_keys=np.char.add(np.char.add(dataset, '/'), sample_id),
        subject_keys=np.char.add(np.char.add(dataset, '/'), subject),
        subject_group=np.array([group_of[pair] for pair in pairs], dtype=np.int64))

  @property
  def num_samples(self) -> int:
    return len(self.label)


def natural_key(text: str) -> tuple:
  """Sort key that orders '6' before '10' and 'sub2' before 'sub10'."""
  return tuple((0, int(part), '') if part.isdigit() else (1, 0, part)
               for part in re.split(r'(\d+)', str(text)) if part)


def _derived_seed(seed: int, *path: int | str) -> int:
  """A 32-bit seed for sklearn/numpy from (seed, path); strings are hashed with crc32."""
  words = [seed] + [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) for p in path]
  return int(np.random.SeedSequence(words).generate_state(1)[0])


def _can_stratify(labels: np.ndarray) -> bool:
  """sklearn's stratified splits need at least 2 samples of every class present."""
  return len(labels) > 0 and np.unique(labels, return_counts=True)[1].min() >= 2


# Each protocol returns [(fold name, train mask, test mask)]; validation is carved out afterwards.
_SplitList = list[tuple[str, np.ndarray, np.ndarray]]


def _loso(view: _MetaView, spec: FoldSpec) -> _SplitList:
  del spec
  splits = []
  for group in range(view.subject_group.max() + 1):
    test = view.subject_group == group
    subject_key = view.subject_keys[test][0]
    splits.append((f'loso:{subject_key}', ~test, test))
  return splits


def _lovo(view: _MetaView, spec: FoldSpec) -> _SplitList:
  del spec
  order = sorted(range(view.num_samples), key=lambda i: natural_key(view.sample_keys[i]))
  splits = []
  for i in order:
    test = np.zeros(view.num_samples, dtype=bool)
    test[i] = True
    splits.append((f'lovo:{view.sample_keys[i]}', ~test, test))
  return splits


def _kfold(view: _MetaView, spec: FoldSpec) -> _SplitList:
  dummy_x = np.zeros((view.num_samples, 1))
  if spec.grouped:
    num_subjects = view.subject_group.max() + 1
    if num_subjects < spec.k:
      raise ValueError(f'grouped kfold: k={spec.k} but only {num_subjects} subjects')
    splitter = model_selection.StratifiedGroupKFold(spec.k, shuffle=True, random_state=spec.seed)
    index_pairs = splitter.split(dummy_x, view.label, groups=view.subject_group)
  else:
    if view.num_samples < spec.k:
      raise ValueError(f'kfold: k={spec.k} but only {view.num_samples} samples')
    splitter = model_selection.StratifiedKFold(spec.k, shuffle=True, random_state=spec.seed)
    index_pairs = splitter.split(dummy_x, view.label)
  splits = []
  for i, (_, test_index) in enumerate(index_pairs):
    test = np.zeros(view.num_samples, dtype=bool)
    test[test_index] = True
    splits.append((f'kfold:{i}', ~test, test))
  return splits


def _holdout(view: _MetaView, spec: FoldSpec) -> _SplitList:
  indices = np.arange(view.num_samples)
  splits = []
  for repeat in range(spec.repeats):
    random_state = _derived_seed(spec.seed, 'holdout', repeat)
    if spec.grouped:
      # Stratified and grouped: the first fold of a StratifiedGroupKFold with 1/test_fraction
      # folds, so the test share is ~1/round(1/test_fraction) of the samples.
      num_splits = round(1.0 / spec.test_fraction)
      if num_splits < 2 or view.subject_group.max() + 1 < num_splits:
        raise ValueError(f'grouped holdout: test_fraction={spec.test_fraction} needs '
                         f'{num_splits} >= 2 subject groups')
      splitter = model_selection.StratifiedGroupKFold(num_splits, shuffle=True,
                                                      random_state=random_state)
      _, test_index = next(splitter.split(indices[:, None], view.label, view.subject_group))
    else:
      stratify = view.label if _can_stratify(view.label) else None
      if stratify is None:
        warnings.warn('holdout: a class has fewer than 2 samples; splitting without stratification')
      _, test_index = model_selection.train_test_split(
          indices, test_size=spec.test_fraction, random_state=random_state, stratify=stratify)
    test = np.zeros(view.num_samples, dtype=bool)
    test[test_index] = True
    splits.append((f'holdout:{repeat}', ~test, test))
  return splits


def _cross_dataset(view: _MetaView, spec: FoldSpec) -> _SplitList:
  train_sets, test_sets = set(spec.train_datasets), set(spec.test_datasets)
  if not train_sets or not test_sets:
    raise ValueError('cross_dataset needs train_datasets and test_datasets')
  if train_sets & test_sets:
    raise ValueError(f'cross_dataset: {sorted(train_sets & test_sets)} on both sides; for a '
                     'within-dataset split select that dataset and use holdout or kfold')
  present = set(view.dataset.tolist())
  missing = sorted((train_sets | test_sets) - present)
  if missing:
    raise ValueError(f'cross_dataset: datasets {missing} not in the metadata ({sorted(present)})')
  train = np.isin(view.dataset, list(train_sets))
  test = np.isin(view.dataset, list(test_sets))
  name = f"cross_dataset:{'+'.join(sorted(train_sets))}->{'+'.join(sorted(test_sets))}"
  return [(name, train, test)]


PROTOCOLS: dict[str, Callable[[_MetaView, FoldSpec], _SplitList]] = {
    'loso': _loso,
    'lovo': _lovo,
    'kfold': _kfold,
    'holdout': _holdout,
    'cross_dataset': _cross_dataset,
}


def _validation_mask(view: _MetaView, spec: FoldSpec, fold_name: str, train: np.ndarray,
                     test: np.ndarray) -> np.ndarray:
  """Validation samples for one fold, drawn only from its training samples."""
  val = np.zeros_like(train)
  # Keyed by the fold's name, so a fold's validation set does not depend on the other folds.
  random_state = _derived_seed(spec.seed, 'val', fold_name)
  if spec.val_subjects:
    test_groups = set(view.subject_group[test].tolist())
    candidates = sorted(set(view.subject_group[train].tolist()) - test_groups)
    if len(candidates) <= spec.val_subjects:
      raise ValueError(f'fold {fold_name!r}: val_subjects={spec.val_subjects} but only '
                       f'{len(candidates)} training subjects absent from the test set '
                       '(use grouped=True or val_fraction)')
    rng = np.random.default_rng(random_state)
    chosen, covered = [], set()
    order = rng.permutation(candidates).tolist()
    # Stratification-aware: first take subjects that add a class the validation set lacks.
    for group in order:
      classes = set(view.label[train & (view.subject_group == group)].tolist())
      if len(chosen) < spec.val_subjects and classes - covered:
        chosen.append(group)
        covered |= classes
    for group in order:
      if len(chosen) < spec.val_subjects and group not in chosen:
        chosen.append(group)
    val = train & np.isin(view.subject_group, chosen)
  elif spec.val_fraction:
    train_index = np.flatnonzero(train)
    num_val = max(1, round(spec.val_fraction * len(train_index)))
    if num_val >= len(train_index):
      raise ValueError(f'fold {fold_name!r}: val_fraction={spec.val_fraction} leaves no training '
                       'samples')
    labels = view.label[train_index]
    num_classes = len(np.unique(labels))  # sklearn needs >= 1 sample per class on each side
    stratify = labels if (_can_stratify(labels) and num_val >= num_classes
                          and len(train_index) - num_val >= num_classes) else None
    _, val_index = model_selection.train_test_split(
        train_index, test_size=num_val, random_state=random_state, stratify=stratify)
    val[val_index] = True
  return val


def make_folds(meta: ClipMetadata, spec: FoldSpec | Mapping[str, Any] | Any = None,
               **overrides) -> Folds:
  """Folds of protocol `spec` over `meta` (ClipSet or any object with the ClipMetadata arrays)."""
  spec = FoldSpec.from_config(spec, **overrides)
  view = _MetaView.of(meta)
  _raise_on_duplicates(view.sample_keys.tolist(), 'sample ids (dataset/sample_id)')
  names, trains, vals, tests = [], [], [], []
  for name, train, test in PROTOCOLS[spec.name](view, spec):
    val = _validation_mask(view, spec, name, train, test)
    names.append(name)
    trains.append(train & ~val)
    vals.append(val)
    tests.append(test)
  return Folds(protocol=spec.name, names=names, train=np.stack(trains), val=np.stack(vals),
               test=np.stack(tests), sample_ids=view.sample_keys, subjects=view.subject_keys,
               spec=_jsonable(dataclasses.asdict(spec))).validate()


def class_coverage(folds: Folds, labels: Sequence[int], num_classes: int) -> list[list[int]]:
  """Per fold, the classes with no training sample (the trainer warns about them)."""
  labels = np.asarray(labels)
  return [sorted(set(range(num_classes)) - set(labels[train].tolist())) for train in folds.train]


def class_coverage_warnings(folds: Folds, labels: Sequence[int], num_classes: int,
                            class_names: Sequence[str] | None = None) -> list[str]:
  """'fold X lacks class Y in training' lines, one per (fold, missing class)."""
  lines = []
  for name, missing in zip(folds.names, class_coverage(folds, labels, num_classes)):
    for label in missing:
      shown = class_names[label] if class_names else str(label)
      lines.append(f'fold {name} lacks class {shown} in training')
  return lines


# ------------------------------------------------------------------------------------------------
# MEGC2019 composite (CDE): membership in mejax.data.megc2019; its folds are `loso` over the
# selected ClipSet.

def megc2019_metadata(membership: Sequence[MembershipRow]) -> ClipMeta:
  """The composite's metadata from the membership alone (sample_id = 'subject/filename')."""
  return ClipMeta.from_arrays(
      dataset=[row.dataset for row in membership], subject=[row.subject for row in membership],
      label=[row.label for row in membership],
      sample_id=[f'{row.subject}/{row.filename}' for row in membership])
