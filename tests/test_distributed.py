"""Multi-process sweeps (jax.distributed): 2 local CPU processes x 2 devices against 1 x 4.

Both runs have the same ('fold': 4, 'data': 1) mesh, so every device runs the same program on the
same folds and the results must agree; only process 0 may write the workdir's files.

The subprocesses set JAX_THREEFRY_PARTITIONABLE=0: with jax 0.10's partitionable threefry,
XLA:CPU takes ~20 s to compile even a tiny model's vmapped init (~4 s without). Both runs use the
same setting, so the comparison is unaffected.
"""

import csv
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from mejax import distributed

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT_S = 300  # whole test; a healthy run takes ~2 minutes on 2 busy cores
# The accelerator lowering of 3D convs and no rotation compile ~10 s faster a process on XLA:CPU.
CHEAP_TO_COMPILE = ("--config.model.conv_lowering=xla", "--config.train.rotate_degrees=0.0")
OUTPUTS = {"config.json", "folds.json", "skipped_samples.json", "predictions.csv", "metrics.json",
           "confusion_matrix.png", "training_curves.png", "tensorboard", "checkpoints",
           ".mejax.lock"}  # the workdir lock (an flock; it dies with its process)


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(name, tmp_path, data_dir, workdir, devices, extra=()):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
             JAX_THREEFRY_PARTITIONABLE="0",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  cmd = [sys.executable, "-m", "mejax.main", "--config", str(REPO / "tests" / "tiny_config.py"),
         f"--config.data.data_dir={data_dir}", *CHEAP_TO_COMPILE,
         "--workdir", str(workdir), *extra]
  out, err = (open(tmp_path / f"{name}.{s}", "w") for s in ("stdout", "stderr"))
  proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err)
  proc.name, proc.files = name, (out, err)
  return proc


def _wait(procs, tmp_path, check=True, timeout_s=TIMEOUT_S):
  """Waits for every process; when one fails the others are killed (they would wait for it at
  the next collective until jax's own timeouts, minutes later). Fails with their stderr (with
  `check`, on any failure; else, where failures are expected, only on a timeout)."""
  deadline = time.monotonic() + timeout_s
  failed, timed_out = None, False
  while any(p.poll() is None for p in procs):
    if failed is None and check:
      failed = next((p for p in procs if p.poll() not in (None, 0)), None)
    timed_out = time.monotonic() > deadline
    if failed is not None or timed_out:
      for p in procs:
        if p.poll() is None:
          p.kill()
      for p in procs:
        p.wait()
      break
    time.sleep(0.5)
  for p in procs:
    for f in p.files:
      f.close()
  bad = [p for p in procs if p.returncode != 0]
  if (bad and check) or timed_out:
    report = []
    for p in procs:
      err = (tmp_path / f"{p.name}.stderr").read_text()
      lines = [l for l in err.splitlines() if "Gloo" not in l and not l.startswith("I0000")]
      report.append(f"--- {p.name}: exit {p.returncode} ---\n" + "\n".join(lines[-40:]))
    why = f"timed out after {timeout_s} s" if timed_out else "failed"
    pytest.fail(f"Subprocess run {why} ({', '.join(p.name for p in bad)}):\n" + "\n".join(report))


def _predictions(workdir):
  with open(workdir / "predictions.csv") as f:
    return {row["sample_id"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
def test_two_processes_match_one_process(tiny_data_dir, tmp_path):
  single, multi = tmp_path / "single", tmp_path / "multi"
  address = f"127.0.0.1:{_free_port()}"
  procs = [_start("single", tmp_path, tiny_data_dir, single, devices=4, extra=["--distributed=off"])]
  for i in range(2):
    procs.append(_start(f"process{i}", tmp_path, tiny_data_dir, multi, devices=2, extra=[
        f"--coordinator_address={address}", "--num_processes=2", f"--process_id={i}"]))
  _wait(procs, tmp_path)

  # Same predictions (the same programs on the same folds: identical up to float noise).
  ref, got = _predictions(single), _predictions(multi)
  assert ref.keys() == got.keys() and len(ref) == 30
  for k in ref:
    assert got[k]["prediction"] == ref[k]["prediction"], k
    assert got[k]["fold"] == ref[k]["fold"], k
    p = lambda row: np.asarray([float(v) for c, v in row.items() if c.startswith("p_")])
    np.testing.assert_allclose(p(got[k]), p(ref[k]), atol=1e-5, err_msg=k)
  ref_metrics = json.loads((single / "metrics.json").read_text())
  got_metrics = json.loads((multi / "metrics.json").read_text())
  assert got_metrics["report"]["pooled"] == ref_metrics["report"]["pooled"]
  assert len(got_metrics["history"]) == len(ref_metrics["history"]) == 2
  for a, b in zip(got_metrics["history"], ref_metrics["history"]):
    np.testing.assert_allclose(a["train_loss_per_fold"], b["train_loss_per_fold"], atol=1e-5)
  assert (multi / "folds.json").read_text() == (single / "folds.json").read_text()

  # One copy of every output: what one process writes, nothing else, no leftover temporaries.
  assert {p.name for p in multi.iterdir()} == {p.name for p in single.iterdir()} == OUTPUTS
  assert len(list((multi / "tensorboard").iterdir())) == 1
  assert sorted(p.name for p in (multi / "checkpoints").iterdir()) == \
      sorted(p.name for p in (single / "checkpoints").iterdir())
  # Only process 0 prints the result table.
  assert (tmp_path / "process0.stdout").read_text().count("pooled (all folds)") == 1
  assert "pooled (all folds)" not in (tmp_path / "process1.stdout").read_text()


def test_refusal_on_process_0_stops_every_process(tiny_data_dir, tmp_path):
  """A workdir holding another experiment that finished: process 0 refuses it, process 1 stops
  too (no hang)."""
  workdir = tmp_path / "other"
  workdir.mkdir()
  (workdir / "config.json").write_text(json.dumps({"seed": 12345}))
  (workdir / "metrics.json").write_text("{}")  # it trained: not a workdir to reclaim
  address = f"127.0.0.1:{_free_port()}"
  procs = [_start(f"process{i}", tmp_path, tiny_data_dir, workdir, devices=2, extra=[
      f"--coordinator_address={address}", "--num_processes=2", f"--process_id={i}"])
      for i in range(2)]
  _wait(procs, tmp_path, check=False, timeout_s=120)
  assert procs[0].returncode != 0 and procs[1].returncode != 0
  assert "holds a different experiment" in (tmp_path / "process0.stderr").read_text()
  assert "failed on process 0" in (tmp_path / "process1.stderr").read_text()
  assert sorted(p.name for p in workdir.iterdir()) == ["config.json", "metrics.json"]


def test_when_to_initialize(monkeypatch):
  for var in ("SLURM_STEP_NODELIST", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS"):
    monkeypatch.delenv(var, raising=False)
  assert not distributed.should_initialize("auto")
  assert not distributed.should_initialize("auto", num_processes=1)
  assert distributed.should_initialize("auto", num_processes=2)
  assert distributed.should_initialize("auto", coordinator_address="10.0.0.1:1234")
  assert distributed.should_initialize("on")
  assert not distributed.should_initialize("off", coordinator_address="10.0.0.1:1234")
  # sbatch's batch script (no job step) stays one process; an srun step of 2+ tasks starts it.
  monkeypatch.setenv("SLURM_NTASKS", "4")
  assert not distributed.should_initialize("auto")
  monkeypatch.setenv("SLURM_STEP_NODELIST", "node[001-002]")
  monkeypatch.setenv("SLURM_PROCID", "0")
  monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
  assert not distributed.should_initialize("auto")
  monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
  assert distributed.should_initialize("auto")
  with pytest.raises(ValueError, match="distributed mode"):
    distributed.should_initialize("maybe")


def test_single_process_helpers():
  import jax
  import jax.numpy as jnp
  x = jnp.arange(6.0)
  np.testing.assert_array_equal(distributed.to_host(x), np.arange(6.0))
  assert distributed.is_writer() and not distributed.multi_process()
  assert distributed.on_writer(lambda: 7, "seven") == 7
  assert distributed.min_over_processes(None) is None
  assert distributed.min_over_processes(5 << 33) == 5 << 33
  assert distributed.local_mesh_device(jax.devices()) == jax.devices()[0]
  distributed.barrier("noop")
