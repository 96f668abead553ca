"""`python -m mejax.bench` as a user runs it, in a small configuration (no time is asserted)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_bench_reports_every_figure_and_the_torch_baseline(tmp_path):
  out = tmp_path / "bench.json"
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  cmd = [sys.executable, "-m", "mejax.bench", "--config", "configs/convlstm.py:smoke",
         "--folds", "2", "--steps", "2", "--warmup", "1", "--strategies", "vmap,loop,sharded",
         "--config.data.size=16", "--config.data.num_frames=4", "--config.train.batch_size=2",
         "--config.eval.batch_size=4", "--config.model.width_multiplier=0.03125",
         "--json", str(out)]
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(out.read_text())
  train = result["train"]
  assert train["seconds_per_step"] > 0 and train["compile_seconds"] > 0
  assert train["clips_per_second"] == pytest.approx(2 / train["seconds_per_step"])
  assert train["flops_per_step"] > 0 and train["step_bytes"] > 0
  assert result["eval"]["clips_per_second"] > 0
  assert result["memory"]["peak_host_rss_bytes"] > 0
  strategies = {r["strategy"]: r for r in result["fold_axis"]}
  assert set(strategies) == {"vmap", "loop", "sharded"}
  assert strategies["sharded"]["devices"] == 2
  for r in strategies.values():
    assert r["folds"] == 2
    assert r["sweep_over_separate"] == pytest.approx(
        r["seconds_per_step"] / (2 * train["seconds_per_step"]))
  # The PyTorch baseline ran on the same model, batch and clip shape.
  torch_train = result["torch"]["train"]
  assert torch_train["input_shape"] == [2, 3, 4, 16, 16]
  assert torch_train["model"] == "TorchConvLSTMAutoencoder"
  assert result["jax_over_torch_train_time"] == pytest.approx(
      train["seconds_per_step"] / torch_train["seconds_per_step"])
  for row in ("train step (1 fold)", "JAX / PyTorch train step time", "| sharded | 2 | 2 |"):
    assert row in proc.stdout
