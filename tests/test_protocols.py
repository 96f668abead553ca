"""Fold masks: LOSO/LOVO/k-fold/hold-out/cross-dataset invariants, validation, JSON, MEGC2019."""

import collections
import json
import pathlib

import ml_collections
import numpy as np
import pytest

from mejax import protocols
from mejax.data import megc2019

SHARED = pathlib.Path(__file__).resolve().parents[2] / 'shared'
MEGC2019_CSV = SHARED / 'annotations' / 'megc2019' / 'combined_3class_gt.csv'


def _synthetic_meta(seed=0):
  """3 datasets; 'sub01' exists in casme2 and samm (two subjects), SMIC uses 's01'."""
  rng = np.random.default_rng(seed)
  subjects = {'casme2': ['sub01', 'sub02', 'sub03', 'sub04'],
              'samm': ['sub01', '6', '10', '7'],
              'smic': ['s01', 's02', 's03']}
  dataset, subject, label, sample_id = [], [], [], []
  for name, names in subjects.items():
    for who in names:
      for clip in range(int(rng.integers(4, 9))):
        dataset.append(name)
        subject.append(who)
        label.append(int(rng.integers(0, 3)))
        sample_id.append(f'{who}/clip{clip:02d}')
  return protocols.ClipMeta.from_arrays(dataset, subject, label, sample_id)


def _subject_keys(meta):
  return np.array([f'{d}/{s}' for d, s in zip(meta.dataset, meta.subject)])


# ------------------------------------------------------------------------------------------------
# LOSO / LOVO / cross-dataset


def test_loso_one_fold_per_dataset_subject():
  meta = _synthetic_meta()
  folds = protocols.make_folds(meta, {'name': 'loso'})
  assert folds.num_folds == 11
  # Natural order: '6' < '7' < '10'; 'sub01' of casme2 and samm are two folds.
  assert folds.names[:5] == ['loso:casme2/sub01', 'loso:casme2/sub02', 'loso:casme2/sub03',
                             'loso:casme2/sub04', 'loso:samm/6']
  assert 'loso:samm/sub01' in folds.names
  keys = _subject_keys(meta)
  np.testing.assert_array_equal(folds.test.sum(axis=0), 1)
  for name, train, val, test in zip(folds.names, folds.train, folds.val, folds.test):
    assert set(keys[test]) == {name.removeprefix('loso:')}
    np.testing.assert_array_equal(train, ~test)  # no validation by default
    assert not val.any()
  casme_sub01 = folds.test[folds.fold_index('loso:casme2/sub01')]
  assert set(meta.dataset[casme_sub01]) == {'casme2'}


def test_lovo_and_cross_dataset():
  meta = _synthetic_meta()
  lovo = protocols.make_folds(meta, name='lovo')
  assert lovo.num_folds == len(meta.label)
  np.testing.assert_array_equal(lovo.test.sum(axis=1), 1)
  cross = protocols.make_folds(meta, name='cross_dataset', train_datasets=['smic', 'casme2'],
                               test_datasets=['samm'])
  assert cross.names == ['cross_dataset:casme2+smic->samm']
  np.testing.assert_array_equal(cross.test[0], meta.dataset == 'samm')
  np.testing.assert_array_equal(cross.train[0], meta.dataset != 'samm')
  with pytest.raises(ValueError, match='both sides'):
    protocols.make_folds(meta, name='cross_dataset', train_datasets=['smic'],
                         test_datasets=['smic'])


# ------------------------------------------------------------------------------------------------
# k-fold and hold-out


def _labelled_meta(counts, num_subjects, seed=0):
  """Samples with given class counts spread over `num_subjects` subjects of one dataset."""
  rng = np.random.default_rng(seed)
  label = rng.permutation(np.repeat(np.arange(len(counts)), counts))
  subject = [f'sub{i % num_subjects:02d}' for i in range(len(label))]
  return protocols.ClipMeta.from_arrays(['d'] * len(label), subject, label,
                                        [f'{s}/{i}' for i, s in enumerate(subject)])


def test_kfold_is_stratified():
  meta = _labelled_meta([50, 30, 20], num_subjects=10)
  folds = protocols.make_folds(meta, name='kfold', k=5, seed=3)
  assert folds.names == [f'kfold:{i}' for i in range(5)]
  np.testing.assert_array_equal(folds.test.sum(axis=0), 1)
  for test in folds.test:
    np.testing.assert_array_equal(np.bincount(meta.label[test], minlength=3), [10, 6, 4])


def test_grouped_kfold_keeps_subjects_whole():
  meta = _labelled_meta([60, 40, 20], num_subjects=12)
  folds = protocols.make_folds(meta, name='kfold', k=4, grouped=True, seed=1)
  keys = _subject_keys(meta)
  np.testing.assert_array_equal(folds.test.sum(axis=0), 1)
  for train, test in zip(folds.train, folds.test):
    assert not set(keys[train]) & set(keys[test])
  with pytest.raises(ValueError, match='only 12 subjects'):
    protocols.make_folds(meta, name='kfold', k=13, grouped=True)


def test_holdout_repeats_reproducible_and_seeded():
  meta = _labelled_meta([50, 30, 20], num_subjects=10)
  folds = protocols.make_folds(meta, name='holdout', repeats=3, seed=7)
  again = protocols.make_folds(meta, name='holdout', repeats=3, seed=7)
  other_seed = protocols.make_folds(meta, name='holdout', repeats=3, seed=8)
  fewer = protocols.make_folds(meta, name='holdout', repeats=2, seed=7)
  np.testing.assert_array_equal(folds.test, again.test)
  np.testing.assert_array_equal(folds.test[:2], fewer.test)  # repeat r does not depend on R
  assert not np.array_equal(folds.test, other_seed.test)
  assert len({folds.test[r].tobytes() for r in range(3)}) == 3  # repeats differ
  for train, test in zip(folds.train, folds.test):
    np.testing.assert_array_equal(train, ~test)
    np.testing.assert_array_equal(np.bincount(meta.label[test], minlength=3), [10, 6, 4])
  grouped = protocols.make_folds(meta, name='holdout', grouped=True, repeats=2, seed=7)
  keys = _subject_keys(meta)
  for train, test in zip(grouped.train, grouped.test):
    assert not set(keys[train]) & set(keys[test])
    assert 0.1 <= test.mean() <= 0.3


# ------------------------------------------------------------------------------------------------
# Inner validation


@pytest.mark.parametrize('spec', [
    dict(name='loso', val_subjects=2),
    dict(name='kfold', k=3, grouped=True, val_subjects=1),
    dict(name='holdout', grouped=True, repeats=2, val_subjects=2),
    dict(name='lovo', val_subjects=1),
], ids=lambda spec: spec['name'])
def test_val_subjects_are_whole_training_subjects(spec):
  meta = _synthetic_meta()
  folds = protocols.make_folds(meta, spec, seed=5)
  plain = protocols.make_folds(meta, dict(spec, val_subjects=0), seed=5)
  keys = _subject_keys(meta)
  for i in range(folds.num_folds):
    train, val, test = folds.train[i], folds.val[i], folds.test[i]
    np.testing.assert_array_equal(test, plain.test[i])
    np.testing.assert_array_equal(train | val, plain.train[i])  # carved out of training
    assert len(set(keys[val])) == spec['val_subjects']
    assert not set(keys[val]) & set(keys[test])
    assert not set(keys[val]) & set(keys[train])  # whole subjects
  again = protocols.make_folds(meta, spec, seed=5)
  np.testing.assert_array_equal(folds.val, again.val)


def test_val_fraction_drawn_from_training_samples():
  meta = _labelled_meta([60, 40, 20], num_subjects=12)
  keys = _subject_keys(meta)
  for spec in (dict(name='loso'), dict(name='kfold', grouped=True, k=4)):
    folds = protocols.make_folds(meta, spec, val_fraction=0.25, seed=2)
    for train, val, test in zip(folds.train, folds.val, folds.test):
      assert val.sum() == round(0.25 * (train | val).sum())
      assert not set(keys[val]) & set(keys[test])
      assert set(meta.label[val]) == {0, 1, 2}  # stratified
  with pytest.raises(ValueError, match='not both'):
    protocols.make_folds(meta, name='loso', val_fraction=0.1, val_subjects=1)


def test_val_subjects_refused_when_every_subject_is_tested():
  # Ungrouped k-fold puts every subject in every test fold: no whole subject is left for val.
  meta = _labelled_meta([50, 30, 20], num_subjects=4)
  with pytest.raises(ValueError, match='absent from the test set'):
    protocols.make_folds(meta, name='kfold', val_subjects=1)


# ------------------------------------------------------------------------------------------------
# Folds: validation, JSON, configuration


def test_validate_catches_corrupted_masks():
  meta = _synthetic_meta()
  folds = protocols.make_folds(meta, name='loso', val_subjects=1)

  def corrupted(**masks):
    fields = dict(protocol=folds.protocol, names=folds.names, train=folds.train, val=folds.val,
                  test=folds.test, sample_ids=folds.sample_ids, subjects=folds.subjects,
                  spec=folds.spec)
    return protocols.Folds(**(fields | masks))

  fold = folds.fold_index('loso:samm/6')
  test_sample = np.flatnonzero(folds.test[fold])[0]
  train = folds.train.copy()
  train[fold, test_sample] = True
  with pytest.raises(ValueError, match=r"fold \d+ 'loso:samm/6': train and test share") as error:
    corrupted(train=train).validate()
  assert folds.sample_ids[test_sample] in str(error.value)

  val = folds.val.copy()
  val[fold, test_sample] = True
  with pytest.raises(ValueError, match="'loso:samm/6': val and test share"):
    corrupted(val=val).validate()

  # A test-subject sample moved from test to train: LOSO leak and a sample never tested.
  test = folds.test.copy()
  test[fold, test_sample] = False
  with pytest.raises(ValueError, match="'loso:samm/6': test subject"):
    corrupted(test=test, train=train).validate()

  test = folds.test.copy()
  test[fold + 1, test_sample] = True
  train = folds.train.copy()
  train[fold + 1, test_sample] = False
  with pytest.raises(ValueError, match=f"'{folds.names[fold + 1]}'.*exactly one subject"):
    corrupted(test=test, train=train).validate()


def test_folds_are_frozen_and_json_round_trips():
  meta = _synthetic_meta()
  folds = protocols.make_folds(meta, name='kfold', grouped=True, k=3, val_subjects=1, seed=4)
  with pytest.raises(ValueError):
    folds.test[0, 0] = not folds.test[0, 0]
  uid = [f'{d}/{s}' for d, s in zip(meta.dataset, meta.sample_id)]  # ClipSet.uid
  text = json.dumps(folds.to_json(uid), indent=1)
  data = json.loads(text)
  assert data['folds'][0]['test'] == folds.sample_ids[folds.test[0]].tolist()
  assert data['spec']['val_subjects'] == 1
  with pytest.raises(ValueError, match='not the ones'):
    folds.to_json(uid[::-1])
  assert protocols.Folds.from_json(data).names == folds.names
  restored = protocols.Folds.from_json(text)
  assert restored.names == folds.names and restored.protocol == 'kfold'
  for field in ('train', 'val', 'test', 'sample_ids', 'subjects'):
    np.testing.assert_array_equal(getattr(restored, field), getattr(folds, field))
  restored.check_matches(meta)
  other = _synthetic_meta(seed=1)
  with pytest.raises(ValueError, match='does not match'):
    restored.check_matches(other)
  data['folds'][1]['test'].append('casme2/nobody/clip')
  with pytest.raises(ValueError, match='unknown sample ids'):
    protocols.Folds.from_json(json.dumps(data))


def test_spec_from_config_dict_and_errors():
  meta = _synthetic_meta()
  config = ml_collections.ConfigDict({'name': 'kfold', 'k': 3, 'seed': 1, 'grouped': True})
  from_config = protocols.make_folds(meta, config)
  from_kwargs = protocols.make_folds(meta, name='kfold', k=3, seed=1, grouped=True)
  np.testing.assert_array_equal(from_config.test, from_kwargs.test)
  with pytest.raises(ValueError, match=r"unknown protocol 'losoo'.*'kfold'.*'loso'"):
    protocols.make_folds(meta, name='losoo')
  with pytest.raises(ValueError, match='unknown FoldSpec keys'):
    protocols.make_folds(meta, name='loso', folds=3)
  duplicated = protocols.ClipMeta.from_arrays(['a', 'a'], ['s1', 's2'], [0, 1], ['x', 'x'])
  with pytest.raises(ValueError, match='duplicate sample ids'):
    protocols.make_folds(duplicated, name='loso')


def test_class_coverage():
  # Class 2 exists only in subject s2: its LOSO fold has no class 2 in training.
  meta = protocols.ClipMeta.from_arrays(['d'] * 6, ['s1', 's1', 's2', 's2', 's3', 's3'],
                                        [0, 1, 2, 0, 1, 0], [str(i) for i in range(6)])
  folds = protocols.make_folds(meta, name='loso')
  assert protocols.class_coverage(folds, meta.label, 3) == [[], [2], []]
  assert protocols.class_coverage_warnings(folds, meta.label, 3, ['neg', 'pos', 'sur']) == [
      'fold loso:d/s2 lacks class sur in training']


# ------------------------------------------------------------------------------------------------
# MEGC2019 composite


@pytest.fixture(scope='module')
def membership():
  if not MEGC2019_CSV.exists():
    pytest.skip(f'{MEGC2019_CSV} not found (shared/ is expected beside the repository)')
  return megc2019.megc2019_membership(MEGC2019_CSV)


def test_megc2019_membership_counts(membership):
  assert len(membership) == 442
  counts = collections.Counter((row.dataset, row.label) for row in membership)
  expected = {'smic': (70, 51, 43), 'casme2': (88, 32, 25), 'samm': (92, 26, 15)}
  for dataset, per_class in expected.items():
    assert tuple(counts[dataset, label] for label in range(3)) == per_class
  subjects = collections.Counter(dataset for dataset, _ in {(r.dataset, r.subject)
                                                            for r in membership})
  assert subjects == {'smic': 16, 'casme2': 24, 'samm': 28}
  folds = protocols.make_folds(protocols.megc2019_metadata(membership), name='loso')
  assert folds.num_folds == 68


def test_megc2019_membership_rejects_bad_rows(tmp_path, membership):
  lines = MEGC2019_CSV.read_text().splitlines()
  for bad_line, message in (('casme2,sub01,EP02_01f,3', 'label'),
                            ('casme2,sub01', 'expected 4 fields'),
                            ('casme3,sub01,EP02_01f,1', 'dataset'),
                            (lines[0], 'duplicate of row 1')):
    path = tmp_path / 'gt.csv'
    path.write_text('\n'.join(lines[:10] + [bad_line] + lines[11:]) + '\n')
    with pytest.raises(ValueError, match=f'gt.csv: row 11 .*{message}'):
      megc2019.megc2019_membership(path)
  path.write_text('\n'.join(lines[:-1]) + '\n')
  with pytest.raises(ValueError, match='441 rows, expected 442'):
    megc2019.megc2019_membership(path)


def _clipset_like(membership):
  """A ClipSet as builders name things: raw SMIC 's1'/'s1_ne_01', SAMM '006', alias names."""
  dataset, subject, label, sample_id = [], [], [], []
  for row in membership:
    who, filename = row.subject, row.filename
    if row.dataset == 'smic':
      who = f's{int(who[1:])}'
      filename = who + filename[filename.index('_'):]
    if row.dataset == 'samm':
      who = f'{int(who):03d}'
    dataset.append({'smic': 'smic_hs', 'casme2': 'casme2', 'samm': 'samm'}[row.dataset])
    subject.append(who)
    label.append(row.label)
    sample_id.append(f'{who}/{filename}')
  # Clips outside the composite (CASME II 'others').
  dataset += ['casme2', 'casme2']
  subject += ['sub01', 'sub02']
  label += [0, 0]
  sample_id += ['sub01/EP99_01', 'sub02/EP99_02']
  return protocols.ClipMeta.from_arrays(dataset, subject, label, sample_id)


def test_megc2019_mask_matches_builder_names(membership):
  meta = _clipset_like(membership)
  mask = megc2019.megc2019_mask(meta, membership)
  assert mask.sum() == 442 and not mask[-2:].any()
  with pytest.raises(ValueError, match='outside the MEGC2019 composite'):
    megc2019.check_megc2019_clipset(meta, membership)
  inside = protocols.ClipMeta.from_arrays(meta.dataset[mask], meta.subject[mask],
                                          meta.label[mask], meta.sample_id[mask])
  megc2019.check_megc2019_clipset(inside, membership)
  # Only CASME II available: restrict the check to it.
  casme = meta.dataset == 'casme2'
  casme_only = protocols.ClipMeta.from_arrays(meta.dataset[casme], meta.subject[casme],
                                              meta.label[casme], meta.sample_id[casme])
  assert megc2019.megc2019_mask(casme_only, membership, datasets=['casme2']).sum() == 145
  with pytest.raises(ValueError, match='297 membership rows without a clip'):
    megc2019.megc2019_mask(casme_only, membership)
  wrong = np.array(meta.label)
  wrong[0] = (wrong[0] + 1) % 3
  relabelled = protocols.ClipMeta.from_arrays(meta.dataset, meta.subject, wrong, meta.sample_id)
  with pytest.raises(ValueError, match='1 label mismatches'):
    megc2019.megc2019_mask(relabelled, membership)
