"""The view cache: a second run reads its inputs without TensorFlow and gets the same experiment."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mejax import sweep
from mejax.data import clipset as clipset_lib
from mejax.data import view_cache
from test_train import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _copy_dataset(src, dst):
  import shutil
  shutil.copytree(src, dst, ignore=shutil.ignore_patterns("mejax_views"))
  return str(dst)


def test_cached_view_equals_the_view_built_from_tfrecords(tiny_data_dir, tmp_path, monkeypatch):
  data_dir = _copy_dataset(tiny_data_dir, tmp_path / "data")
  config = tiny_config(data_dir)
  path = view_cache.cache_path(config.data)
  assert not path.exists()
  built = sweep.prepare(config)
  assert path.exists()

  def no_tfrecords(*args, **kwargs):
    raise AssertionError("the TFRecords were read although a view cache exists")

  monkeypatch.setattr(clipset_lib, "load", no_tfrecords)
  cached = sweep.prepare(config)
  np.testing.assert_array_equal(cached.inputs, built.inputs)
  for key in ("label", "subject", "dataset", "sample_id", "onset", "apex", "offset"):
    np.testing.assert_array_equal(getattr(cached.clips, key), getattr(built.clips, key))
  assert cached.clips.class_names == built.clips.class_names
  assert cached.clips.sources == built.clips.sources
  assert cached.folds_json == built.folds_json
  # Another view setting is another cache entry, built from the TFRecords.
  config.data.size = 8
  with pytest.raises(AssertionError, match="TFRecords were read"):
    sweep.prepare(config)


def test_a_rebuilt_dataset_makes_the_cache_stale(tiny_data_dir, tmp_path):
  data_dir = _copy_dataset(tiny_data_dir, tmp_path / "data")
  config = tiny_config(data_dir)
  sweep.prepare(config)
  path = view_cache.cache_path(config.data)
  assert view_cache.load(path, config.data) is not None
  info = view_cache.dataset_info_path(config.data.datasets[0], data_dir)
  info.write_text(info.read_text().replace('"name"', '"name" ', 1))
  assert view_cache.load(path, config.data) is None


@pytest.mark.slow
def test_training_runs_without_tensorflow_from_the_cache(tiny_data_dir, tmp_path):
  data_dir = _copy_dataset(tiny_data_dir, tmp_path / "data")
  config = tiny_config(data_dir)
  sweep.prepare(config)  # writes the cache
  # Only the cache travels (a GPU image without TensorFlow and without the TFRecords).
  gpu_data = tmp_path / "gpu_data"
  os.makedirs(gpu_data)
  os.rename(view_cache.cache_path(config.data).parent, gpu_data / "mejax_views")
  script = textwrap.dedent(f"""
      import sys
      sys.modules["tensorflow"] = None           # any import of TensorFlow now fails
      sys.modules["tensorflow_datasets"] = None
      sys.path.insert(0, {os.path.join(ROOT, "tests")!r})
      from test_train import tiny_config
      from mejax import train
      report = train.train_and_evaluate(tiny_config({str(gpu_data)!r}), {str(tmp_path / "run")!r})
      assert "tensorflow" not in [m.split(".")[0] for m in sys.modules if sys.modules[m]]
      print("UAR", report["pooled"]["uar"])
  """)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert "UAR" in proc.stdout
  metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
  assert metrics["folds_trained"] > 0


def test_prepare_command_writes_the_view_cache_of_a_config(tiny_data_dir, tmp_path):
  data_dir = _copy_dataset(tiny_data_dir, tmp_path / "data")
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run(
      [sys.executable, "-m", "mejax.prepare", "--config", "tests/tiny_config.py",
       "--data_dir", data_dir], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  config = tiny_config(data_dir)
  path = view_cache.cache_path(config.data)
  assert path.exists() and str(path) in proc.stdout
  assert view_cache.load(path, config.data) is not None
  # With training magnification factors, their views are cached too.
  proc = subprocess.run(
      [sys.executable, "-m", "mejax.prepare", "--config", "tests/tiny_config.py",
       "--config.data.magnify_alpha=8", "--config.data.train_magnify_alphas=(5.0,14.0)",
       "--data_dir", data_dir], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  config = tiny_config(data_dir, **{"data.magnify_alpha": 8.0,
                                    "data.train_magnify_alphas": (5.0, 14.0)})
  for variant in [config.data] + view_cache.variant_configs(config.data):
    path = view_cache.cache_path(variant)
    assert path.exists() and str(path) in proc.stdout


def test_training_magnification_variants_are_views_of_their_own(tiny_data_dir, tmp_path,
                                                                  monkeypatch):
  """data.train_magnify_alphas: one view per factor for training, each cached; the evaluated
  view keeps data.magnify_alpha."""
  data_dir = _copy_dataset(tiny_data_dir, tmp_path / "data")
  config = tiny_config(data_dir, **{"data.magnify_alpha": 8.0,
                                    "data.train_magnify_alphas": (5.0, 14.0)})
  exp = sweep.prepare(config)
  assert exp.train_inputs.shape == (2,) + exp.inputs.shape
  for alpha, variant in zip((5.0, 14.0), exp.train_inputs):
    single = tiny_config(data_dir, **{"data.magnify_alpha": alpha})
    np.testing.assert_array_equal(variant, view_cache.make_view(exp_clips(single), single.data))
  assert not np.array_equal(exp.train_inputs[0], exp.train_inputs[1])
  plain = tiny_config(data_dir, **{"data.magnify_alpha": 8.0})
  assert sweep.prepare(plain).train_inputs is None

  monkeypatch.setattr(clipset_lib, "load", lambda *a, **k: pytest.fail("TFRecords read"))
  cached = sweep.prepare(config)
  np.testing.assert_array_equal(cached.train_inputs, exp.train_inputs)
  np.testing.assert_array_equal(cached.inputs, exp.inputs)


def exp_clips(config):
  return clipset_lib.load(config.data.datasets, config.data.data_dir, config.data.label_map)
