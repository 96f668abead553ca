"""Device memory planning for fold sweeps: does the sweep fit, and how many folds run at once.

The fold-stacked state (parameters, optimiser moments, best copies) of every fold must stay on the
devices for the whole run; the activations of a step only need to exist for the folds being
computed. So a sweep first checks that state + data fit (and refuses before starting, with the
numbers, when they do not), then picks the largest fold chunk whose compiled step fits the rest,
reading XLA's own memory analysis of the compiled program.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Callable

import jax
import numpy as np

log = logging.getLogger(__name__)

GiB = 1024 ** 3
# Headroom for the allocator, eval programs and fragmentation.
USABLE_FRACTION = 0.9


def tree_bytes(tree: Any) -> int:
  """Bytes of every array (or ShapeDtypeStruct) leaf of a pytree."""
  return int(sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize
                 for x in jax.tree_util.tree_leaves(tree)))


def _host_available_bytes() -> int | None:
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return None


def device_free_bytes(device: jax.Device, devices_sharing_host: int = 1) -> int | None:
  """Free memory of one device: the allocator's limit minus use on accelerators; on CPU the
  host's available memory, shared by the fake CPU devices of one process. None if unknown."""
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and "bytes_limit" in stats:
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
  host = _host_available_bytes()
  return None if host is None else host // max(1, devices_sharing_host)


def device_memory_report(device: jax.Device) -> dict:
  """Peak / in-use / limit bytes where the backend reports them (GPU, TPU); {} on CPU."""
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if not stats:
    return {}
  keys = ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")
  return {k: int(stats[k]) for k in keys if k in stats}


def step_bytes(compiled) -> int | None:
  """Memory a compiled step needs beyond its (already resident) arguments: temporaries plus the
  outputs that do not reuse a donated argument's buffer."""
  try:
    ma = compiled.memory_analysis()
  except Exception:  # noqa: BLE001  some backends do not implement it
    return None
  if ma is None:
    return None
  return int(ma.temp_size_in_bytes + max(0, ma.output_size_in_bytes - ma.alias_size_in_bytes))


def _fmt(n: int | None) -> str:
  return "unknown" if n is None else f"{n / GiB:.2f} GiB"


@dataclasses.dataclass
class Plan:
  folds_per_device: int
  fold_chunk: int
  state_bytes_per_device: int
  data_bytes_per_device: int
  step_bytes: int | None
  free_bytes: int | None

  def describe(self) -> str:
    return (f"{self.folds_per_device} folds per device, {self.fold_chunk} at a time; state "
            f"{_fmt(self.state_bytes_per_device)} + data {_fmt(self.data_bytes_per_device)} "
            f"resident, step {_fmt(self.step_bytes)}, free before start {_fmt(self.free_bytes)}")


def check_resident_fits(state_bytes_per_device: int, data_bytes_per_device: int,
                        free_bytes: int | None, folds_per_device: int) -> None:
  """Refuses a sweep whose fold-stacked state and data alone exceed the device's memory."""
  if free_bytes is None:
    return
  need = state_bytes_per_device + data_bytes_per_device
  if need > USABLE_FRACTION * free_bytes:
    per_fold = state_bytes_per_device / max(1, folds_per_device)
    room = int((USABLE_FRACTION * free_bytes - data_bytes_per_device) // max(per_fold, 1))
    raise MemoryError(
        f"The sweep does not fit: {folds_per_device} folds per device need {_fmt(need)} resident "
        f"(training state {_fmt(state_bytes_per_device)} = {folds_per_device} x "
        f"{_fmt(int(per_fold))}, data {_fmt(data_bytes_per_device)}) but a device has "
        f"{_fmt(free_bytes)} free ({int(USABLE_FRACTION * 100)}% usable). At most "
        f"{max(room, 0)} folds fit per device: use more devices, train.only_folds, a smaller "
        "model, or drop the best-state copy (train.restore_best=False).")


def choose_fold_chunk(compile_step: Callable[[int], Any], folds_per_device: int,
                      free_bytes: int | None, requested: int = 0,
                      resident_bytes: int = 0) -> tuple[int, Any, int | None]:
  """The largest chunk (halving from all of a device's folds) whose compiled step fits.

  compile_step(chunk) -> a compiled train step; `free_bytes` is measured before the resident state
  was placed, `resident_bytes` what was placed since. Returns (chunk, compiled step, its bytes).
  A requested chunk > 0 is used as given.
  """
  if requested > 0:
    chunk = min(requested, folds_per_device)
    compiled = compile_step(chunk)
    return chunk, compiled, step_bytes(compiled)
  chunk = folds_per_device
  budget = None if free_bytes is None else USABLE_FRACTION * free_bytes - resident_bytes
  while True:
    compiled = compile_step(chunk)
    need = step_bytes(compiled)
    if budget is None or need is None or need <= budget:
      return chunk, compiled, need
    if chunk == 1:
      raise MemoryError(
          f"One fold's train step needs {_fmt(need)} beyond the resident state, but only "
          f"{_fmt(int(max(budget, 0)))} of the device is left after the state and data. Lower "
          "train.batch_size, the clip size or the model width.")
    log.info("A %d-fold chunk needs %s (budget %s); halving", chunk, _fmt(need),
             _fmt(int(budget)))
    chunk = max(1, chunk // 2)


def num_host_devices() -> int:
  """Devices of this process that share one host's memory when the backend is the CPU."""
  return max(1, sum(1 for d in jax.local_devices() if d.platform == "cpu"))
