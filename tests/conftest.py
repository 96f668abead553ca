"""Test setup: 8 fake CPU devices (multi-device code runs on CPU), a tiny built synthetic_me."""

import os

# Must be set before JAX initialises its backend.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
  """synthetic_me/micro_tiny built once into a temporary TFDS data dir."""
  import tensorflow_datasets as tfds
  import tfds_builders.synthetic_me  # noqa: F401

  data_dir = tmp_path_factory.mktemp("tfds")
  tfds.builder("synthetic_me/micro_tiny", data_dir=str(data_dir)).download_and_prepare()
  return str(data_dir)


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
  """Runs in this suite compile the same programs many times: reuse them across runs."""
  import jax

  jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


@pytest.fixture(scope="session")
def tiny_run(tiny_data_dir, tmp_path_factory):
  """(config, workdir) of a finished tiny LOSO run (tests/tiny_config.py, 2 epochs) trained on the
  8 fake devices: what analysis, prediction and transfer tests restore. Treat it as read-only."""
  import tiny_config

  from mejax import train

  config = tiny_config.get_config()
  config.data.data_dir = tiny_data_dir
  workdir = tmp_path_factory.mktemp("tiny_run")
  train.train_and_evaluate(config, str(workdir))
  return config, workdir


@pytest.fixture(scope="session")
def micro_data_dir(tmp_path_factory):
  """synthetic_me/micro (24 subjects, 279 clips; ~30 s to build) in a temporary TFDS data dir."""
  import tensorflow_datasets as tfds
  import tfds_builders.synthetic_me  # noqa: F401

  data_dir = tmp_path_factory.mktemp("tfds_micro")
  tfds.builder("synthetic_me/micro", data_dir=str(data_dir)).download_and_prepare()
  return str(data_dir)
