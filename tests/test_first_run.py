"""The first run on a fresh machine: the embedded dataset builds itself, a long CPU run is
announced, and the first screen carries no start-up noise."""

import logging
import os
import pathlib
import subprocess
import sys

import pytest

from mejax import train
from mejax.data import clipset

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = "synthetic_me/micro_tiny"
# What JAX, TensorFlow and TFDS print at start-up on a CPU machine when left alone.
NOISE = ("libtpu", "oneDNN", "InitializeLog", "cpu_feature_guard", "FeatureConnector",
         "default buffer size", "has no dataset_info")


def _load_command(data_dir):
  return [sys.executable, "-c", "import sys; from mejax.data import clipset; "
          f"print(len(clipset.load(({TINY!r},), sys.argv[1], 'megc2019')))", str(data_dir)]


def test_an_embedded_dataset_is_built_on_first_use_and_only_then(tmp_path, caplog):
  data_dir = tmp_path / "fresh"
  with caplog.at_level(logging.WARNING):
    clips = clipset.load((TINY,), str(data_dir), "megc2019")
  assert (data_dir / "synthetic_me" / "micro_tiny").is_dir()
  assert any("is not built" in r.getMessage() and "building it now" in r.getMessage()
             for r in caplog.records)
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    again = clipset.load((TINY,), str(data_dir), "megc2019")
  assert not any("building" in r.getMessage() for r in caplog.records)
  assert list(again.sample_id) == list(clips.sample_id) and len(clips) > 0


def test_a_licensed_dataset_is_still_refused_with_the_command_that_builds_it(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"'samm/raw' was never built.*mejax.prepare samm"):
    clipset.load(("samm/raw",), str(tmp_path), "megc2019")
  assert not (tmp_path / "samm").exists()


def test_two_runs_starting_at_once_build_the_dataset_once(tmp_path):
  data_dir = tmp_path / "shared"
  first = subprocess.Popen(_load_command(data_dir), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT)
  second = subprocess.run(_load_command(data_dir), capture_output=True, text=True, check=False,
                          cwd=ROOT)
  out, err = first.communicate(timeout=600)
  assert first.returncode == 0 and second.returncode == 0, err + second.stderr
  assert out.strip() == second.stdout.strip() and int(out) > 0
  assert (err + second.stderr).count("building it now") == 1, err + second.stderr
  versions = list((data_dir / "synthetic_me" / "micro_tiny").iterdir())
  assert len(versions) == 1 and (versions[0] / "dataset_info.json").exists(), versions


def test_the_first_command_on_a_fresh_machine_builds_trains_and_prints_no_noise(tmp_path):
  env = {k: v for k, v in os.environ.items()
         if k not in ("JAX_PLATFORMS", "TF_CPP_MIN_LOG_LEVEL")}  # as a user's shell has it
  done = subprocess.run(
      [sys.executable, "-m", "mejax.main", "--config", "tests/tiny_config.py",
       f"--config.data.data_dir={tmp_path / 'tfds'}", "--config.train.num_epochs=1",
       "--workdir", str(tmp_path / "run")],
      capture_output=True, text=True, check=False, cwd=ROOT, env=env)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "building it now" in done.stderr
  for noise in NOISE:
    assert noise not in done.stderr, done.stderr[-3000:]
  assert (tmp_path / "run" / "metrics.json").exists()


def test_a_long_cpu_run_is_announced_before_it_trains(tiny_data_dir, tmp_path, caplog,
                                                      monkeypatch):
  import tiny_config
  config = tiny_config.get_config()
  config.data.data_dir = tiny_data_dir
  config.train.num_epochs = 1
  monkeypatch.setattr(train, "LONG_RUN_SECONDS", 0.0)
  with caplog.at_level(logging.WARNING):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  announced = [r.getMessage() for r in caplog.records if "Training will take" in r.getMessage()]
  assert len(announced) == 1 and ":smoke" in announced[0] and "x 1 steps" in announced[0]


def test_a_short_run_is_not_announced(caplog):
  with caplog.at_level(logging.WARNING):
    train.warn_if_long(0.5, 7000)   # 58 min
  assert not caplog.records
  with caplog.at_level(logging.WARNING):
    train.warn_if_long(0.5, 7400)   # 62 min
  assert "about 1.0 h" in caplog.records[0].getMessage()
