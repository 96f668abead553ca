"""Multi-process runs (`jax.distributed`): start-up and the few helpers the training loop needs.

One sweep can run as several JAX processes (one per node, or one per GPU); every process runs the
same program on the same global ('fold', 'data') mesh. Rules the loop follows:

  * every process computes everything (data, folds, metrics) the same way: they stay in lockstep;
  * device arrays that span processes reach the host through `to_host` (an all-gather), never
    `np.asarray` (which fails on arrays that are not fully addressable);
  * only the writer (process 0) writes files and prints; orbax checkpoints are saved and restored
    by every process (orbax synchronises them itself). The workdir must be on a filesystem that
    every process sees.

When to initialise (`initialize(mode=...)`, flag `--distributed`):
  'off'   never (one process; all local devices).
  'on'    always: explicit flags where given, the rest auto-detected by jax (SLURM, Open MPI, ...).
  'auto'  (default) when `--coordinator_address` or `--num_processes` > 1 is given, or inside a
          SLURM job step (srun) of more than one task; otherwise one process as before.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import jax
import numpy as np

MODES = ("auto", "on", "off")


def _slurm_step_tasks() -> int:
  """Tasks of the enclosing srun step (0 outside one). sbatch alone sets no SLURM_STEP_*."""
  if "SLURM_STEP_NODELIST" not in os.environ or "SLURM_PROCID" not in os.environ:
    return 0
  return int(os.environ.get("SLURM_STEP_NUM_TASKS", os.environ.get("SLURM_NTASKS", "1")))


def should_initialize(mode: str = "auto", coordinator_address: str | None = None,
                      num_processes: int | None = None) -> bool:
  if mode not in MODES:
    raise ValueError(f"Unknown distributed mode {mode!r}; known: {MODES}")
  if mode != "auto":
    return mode == "on"
  return bool(coordinator_address) or (num_processes or 0) > 1 or _slurm_step_tasks() > 1


def initialize(mode: str = "auto", coordinator_address: str | None = None,
               num_processes: int | None = None, process_id: int | None = None,
               local_device_ids: Sequence[int] | None = None,
               initialization_timeout: int = 300) -> bool:
  """Calls `jax.distributed.initialize` when `mode` asks for it; returns whether it did.

  Must run before anything touches a JAX backend (`jax.devices()`, any computation).
  Arguments left None are auto-detected by jax (SLURM: coordinator on the first node of the step,
  process id from SLURM_PROCID and, on GPUs, one device per process from SLURM_LOCALID unless
  `local_device_ids` is given).
  """
  if not should_initialize(mode, coordinator_address, num_processes):
    return False
  if jax.distributed.is_initialized():
    return True
  # CPU processes need a cross-process collectives backend ('gloo' is jax 0.10's default; older
  # versions defaulted to 'none', under which multi-process CPU programs fail to compile).
  if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
      coordinator_address=coordinator_address or None, num_processes=num_processes,
      process_id=process_id,
      local_device_ids=list(local_device_ids) if local_device_ids else None,
      initialization_timeout=initialization_timeout)
  return True


def process_index() -> int:
  return jax.process_index()


def is_writer() -> bool:
  """Process 0 writes files, prints reports and shows progress; the others only compute."""
  return jax.process_index() == 0


def multi_process() -> bool:
  return jax.process_count() > 1


def to_host(x: Any) -> np.ndarray:
  """A device array (or pytree leaf) as a numpy array holding its global value, on every process.

  Arrays spanning several processes are all-gathered (a collective: every process must call it
  for the same array, in the same order).
  """
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def barrier(name: str) -> None:
  """Every process waits here until all have arrived (no-op with one process)."""
  if multi_process():
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def on_writer(fn: Callable[[], int], name: str) -> int:
  """Runs `fn` (returning an int) on process 0 only; every process returns its result.

  When `fn` raises on process 0 it re-raises there, and the others raise a RuntimeError instead of
  waiting forever at the next collective.
  """
  if not multi_process():
    return int(fn())
  from jax.experimental import multihost_utils
  status, value, error = np.int32(0), np.int32(0), None
  if is_writer():
    try:
      value = np.int32(fn())
    except Exception as e:  # noqa: BLE001 - re-raised below, after the others are told
      status, error = np.int32(1), e
  status, value = multihost_utils.broadcast_one_to_all((status, value))
  if int(status):
    if error is not None:
      raise error
    raise RuntimeError(f"{name} failed on process 0; see its output for the error")
  return int(value)


def mesh_devices(num_devices: int = 0) -> list[jax.Device]:
  """The first `num_devices` global devices (0: all); every process must hold some of them."""
  devices = jax.devices()[:num_devices or None]
  if multi_process():
    missing = sorted({d.process_index for d in jax.devices()} - {d.process_index for d in devices})
    if missing:
      raise ValueError(f"mesh.num_devices={num_devices} leaves processes {missing} without a "
                       f"device of the mesh; use mesh.num_devices=0 with {jax.process_count()} "
                       "processes")
  return devices


def local_mesh_device(devices: Sequence[jax.Device]) -> jax.Device:
  """The first of `devices` this process can address (memory statistics need one)."""
  return next(d for d in devices if d.process_index == jax.process_index())


def min_over_processes(value: int | None) -> int | None:
  """The smallest of every process's `value` (None: unknown there), the same on every process.

  Decisions from local measurements (free memory -> fold chunk) must agree, or the processes would
  compile different programs and wait for each other forever.
  """
  if not multi_process():
    return value
  from jax.experimental import multihost_utils
  # int32 halves: without jax_enable_x64 an int64 would be truncated on the way.
  v = -1 if value is None else int(value)
  mine = np.asarray([v >> 30, v & (2**30 - 1)] if v >= 0 else [-1, 0], np.int32)
  every = np.asarray(multihost_utils.process_allgather(mine)).reshape(-1, 2).astype(np.int64)
  known = [(hi << 30) + lo for hi, lo in every if hi >= 0]
  return int(min(known)) if known else None
