"""Memory planning of fold sweeps: refuse what cannot fit, chunk folds to fit the rest."""

import types

import pytest

from mejax import memory
from mejax import train
from test_train import tiny_config

GiB = memory.GiB


class FakeCompiled:
  """A compiled step whose temporaries grow with the fold chunk, as XLA reports them."""

  def __init__(self, chunk, per_fold):
    self.chunk = chunk
    self.per_fold = per_fold

  def memory_analysis(self):
    return types.SimpleNamespace(temp_size_in_bytes=self.chunk * self.per_fold,
                                 output_size_in_bytes=100, alias_size_in_bytes=100)


def test_fold_chunk_halves_until_the_step_fits():
  compiled = []

  def compile_step(chunk):
    compiled.append(chunk)
    return FakeCompiled(chunk, per_fold=1 * GiB)

  chunk, step, need = memory.choose_fold_chunk(compile_step, folds_per_device=17,
                                               free_bytes=10 * GiB, resident_bytes=2 * GiB)
  # 0.9 * 10 - 2 = 7 GiB left for the step: 17 -> 8 -> 4 folds at a time.
  assert compiled == [17, 8, 4] and chunk == 4 and step.chunk == 4 and need == 4 * GiB


def test_everything_fits_runs_all_folds_at_once_and_a_requested_chunk_is_kept():
  make = lambda c: FakeCompiled(c, per_fold=1)
  assert memory.choose_fold_chunk(make, 12, free_bytes=GiB)[0] == 12
  assert memory.choose_fold_chunk(make, 12, free_bytes=None)[0] == 12
  assert memory.choose_fold_chunk(make, 12, free_bytes=1, requested=3)[0] == 3


def test_a_fold_that_cannot_fit_alone_is_refused_with_the_numbers():
  with pytest.raises(MemoryError, match=r"One fold's train step needs 3.00 GiB.*0.60 GiB"):
    memory.choose_fold_chunk(lambda c: FakeCompiled(c, 3 * GiB), 4, free_bytes=2 * GiB,
                             resident_bytes=int(1.2 * GiB))


def test_state_that_cannot_fit_is_refused_before_the_start():
  with pytest.raises(MemoryError, match=r"68 folds per device need 41.00 GiB.*At most 59 folds"):
    memory.check_resident_fits(state_bytes_per_device=40 * GiB, data_bytes_per_device=1 * GiB,
                               free_bytes=40 * GiB, folds_per_device=68)
  memory.check_resident_fits(40 * GiB, 1 * GiB, free_bytes=None, folds_per_device=68)


def test_sweep_too_large_for_the_device_fails_before_any_training(tiny_data_dir, tmp_path,
                                                                  monkeypatch):
  monkeypatch.setattr(memory, "device_free_bytes", lambda *a, **k: 1000)
  config = tiny_config(tiny_data_dir)
  with pytest.raises(MemoryError, match="The sweep does not fit"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not list((tmp_path / "run").glob("checkpoints/*"))
