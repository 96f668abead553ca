"""launch/gpu_check.sh as a user runs it, in its dry-run mode (tiny sizes on the CPU): every
section runs and writes its figures, so the GPU script cannot rot. No time is asserted."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_dry_run_writes_every_section(tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
             PYTHON=sys.executable)
  out = tmp_path / "out"
  done = subprocess.run([str(ROOT / "launch" / "gpu_check.sh"), "out", "--dry_run", "--steps=1"],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
  assert done.returncode == 0, done.stderr[-4000:]
  result = json.loads((out / "gpu_check.json").read_text())   # OUT relative to the caller
  assert result["dry_run"] is True
  for name in ("convlstm", "r3d18"):
    section = result[name]
    assert section["train"]["clips_per_second"] > 0 and section["train"]["flops_per_step"] > 0
    torch_train = section["torch"]["train"]   # PyTorch at its tuned settings, same run
    assert torch_train["channels_last_3d"] is True and torch_train["cudnn_benchmark"] is True
    assert section["clips_over_torch"] == pytest.approx(
        section["train"]["clips_per_second"] / torch_train["clips_per_second"])
  assert result["r3d18"]["config"]["model"] == "r3d18"
  rows = result["fold_axis"]["rows"]
  assert {(r["strategy"], r["folds"]) for r in rows} == {
      (s, 2) for s in ("vmap", "map", "loop")}
  for row in rows:
    assert row["clips_per_second"] > 0 and row["predicted_peak_bytes"] > 0
  sweep = result["megc_sweep"]
  assert sweep["folds"] == 4 and sweep["epochs_timed"] == 3 and sweep["steps_per_epoch"] > 0
  assert sweep["extrapolated_seconds"] > sweep["seconds_per_epoch"] * 50
  assert sweep["predicted_peak_bytes"] > 0
  text = (out / "gpu_check.md").read_text()
  assert "DRY RUN" in text and "Fold axis" in text and "MEGC-sized sweep" in text
  assert "Wrote" in done.stdout


def test_a_bad_section_is_one_line(tmp_path):
  done = subprocess.run([str(ROOT / "launch" / "gpu_check.sh"), str(tmp_path), "--sections=gpu"],
                        env=dict(os.environ, PYTHON=sys.executable), capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines() == [
      "error: --sections: unknown gpu; known: convlstm, r3d18, fold_axis, megc_sweep "
      "(see python -m mejax.gpu_check --help)"]
