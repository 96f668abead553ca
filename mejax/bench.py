"""python -m mejax.bench --config CONFIG [--json OUT]: speed and memory of a config's model.

Measures, on random clips of the config's view shape (no dataset, no TensorFlow needed):
- train step: compile time, steady-state seconds per step and clips/s (one fold, one device),
  model FLOPs per step from XLA's cost analysis (of the step with XLA's own convolutions) and,
  where the device's peak is known, the fraction of it reached;
- eval step at `eval.batch_size`: compile time, clips/s;
- memory: the compiled step's temporaries, device memory where the backend reports it, peak host RSS;
- the fold axis: one program training F folds versus F single-fold steps (the same work) for
  each fold strategy ('vmap', 'map', 'loop', and 'sharded' = vmap over all devices);
- the PyTorch baseline (`benchmarks/`, if torch is installed): the same model, batch and input
  shape, and the ratio of the two step times.

Prints a markdown table; `--json` writes every figure. Figures go to docs/benchmarks.md with the
machine named; no test asserts a time.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np
from absl import app
from absl import flags
from ml_collections import config_flags

from mejax import config_files
from mejax.data import views

_JSON = flags.DEFINE_string("json", None, "Write every figure to this JSON file.")
_FOLDS = flags.DEFINE_integer("folds", 4, "Folds F of the fold-axis comparison.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per measurement (median reported).")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps after compilation.")
_STRATEGIES = flags.DEFINE_list("strategies", ["vmap", "map", "loop", "sharded"],
                                "Fold strategies of the fold-axis comparison ('' for none).")
_TORCH = flags.DEFINE_enum("torch", "auto", ["auto", "on", "off"],
                           "PyTorch baseline: 'auto' runs it when torch imports.")
_TORCH_THREADS = flags.DEFINE_integer("torch_threads", 0, "torch threads (0: all cores).")
_PEAK_TFLOPS = flags.DEFINE_float("peak_tflops", 0.0,
                                  "Device peak TFLOP/s for utilisation (0: known GPUs only).")
config_flags.DEFINE_config_file("config", None, "Experiment config file (file.py[:preset]).",
                                lock_config=True)
flags.mark_flags_as_required(["config"])

# Dense peak TFLOP/s by device kind and compute dtype (vendor data sheets, SXM parts).
PEAK_TFLOPS = {
    ("NVIDIA H100 80GB HBM3", "bfloat16"): 989.0, ("NVIDIA H100 80GB HBM3", "float32"): 67.0,
    ("NVIDIA H200", "bfloat16"): 989.0, ("NVIDIA H200", "float32"): 67.0,
    ("NVIDIA A100-SXM4-80GB", "bfloat16"): 312.0, ("NVIDIA A100-SXM4-80GB", "float32"): 19.5,
    ("NVIDIA A100-SXM4-40GB", "bfloat16"): 312.0, ("NVIDIA A100-SXM4-40GB", "float32"): 19.5,
}


def median_seconds(run: Callable[[], Any], steps: int, warmup: int) -> tuple[float, list[float]]:
  import jax
  for _ in range(warmup):
    jax.block_until_ready(run())
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    jax.block_until_ready(run())
    times.append(time.perf_counter() - start)
  return statistics.median(times), times


class RandomSweep:
  """F folds of random clips of the config's view shape, built by `mejax.sweep` as training
  builds them."""

  def __init__(self, config, num_folds: int, mesh, strategy: str, fold_chunk: int = 0,
               num_samples: int = 0, train_mask: np.ndarray | None = None):
    import jax

    from mejax import models
    from mejax import sweep

    c = config.copy_and_resolve_references()
    # The benchmark runs a config written for one model with another (--config.model.name=...):
    # keys the named model lacks are left out.
    c.model = models.known_keys(c.model)
    self.batch = c.train.batch_size
    num_samples = num_samples or max(4 * self.batch, 64)
    rng = np.random.default_rng(c.seed)
    shape = (num_samples, *views.view_shape(c.data))
    inputs = rng.integers(0, 256, shape, dtype=np.uint8)
    labels = rng.integers(0, 3, num_samples).astype(np.int32)
    if train_mask is None:
      train_mask = np.ones((num_folds, num_samples), bool)
    self.sweep = sweep.build(c, 3, shape[1:], mesh=mesh, labels=labels, train_mask=train_mask,
                             fold_ids=list(range(num_folds)), strategy=strategy)
    self.host_inputs = inputs
    self.dtype = self.sweep.dtype
    self.fold_data = self.sweep.fold_data
    self.inputs = jax.device_put(inputs, self.sweep.replicated)
    self.labels = jax.device_put(labels, self.sweep.replicated)
    self.state = self.sweep.init_state(inputs)
    self.step_fn = self.sweep.train_program(fold_chunk)
    self.eval_fn = self.sweep.eval_program(fold_chunk)
    self.eval_batch = c.eval.batch_size
    self.num_folds = len(self.sweep.lanes)
    self.eval_idx = jax.device_put(
        np.tile(np.arange(self.eval_batch, dtype=np.int32) % num_samples, (self.num_folds, 1)),
        self.sweep.fold_sharding)
    self.mesh = mesh

  def lower_train(self):
    return self.step_fn.lower(self.state, self.fold_data, self.inputs, self.labels)

  def compile_train(self):
    """(compile seconds, the compiled step, XLA's cost analysis or {}, the step's memory beyond
    its arguments). For 'loop' the compiled program is the one-fold step taking a fold index."""
    from mejax import memory
    start = time.perf_counter()
    compiled = self.step_fn.compile(self.state, self.fold_data, self.inputs, self.labels)
    seconds = time.perf_counter() - start
    return seconds, compiled, _cost_dict(compiled.program), memory.step_bytes(compiled.program)

  def compile_planned(self, free_bytes: int | None) -> tuple[int, Any, int]:
    """(fold chunk, compiled step, predicted peak bytes per device) as training plans them: the
    memory planner's chunk for `free_bytes`, and resident state + data + the step's own bytes."""
    from mejax import memory
    resident = self.sweep.resident_bytes(self.sweep.abstract_state(), self.host_inputs, None)
    chunk, compiled = self.sweep.compile_train_step(self.state, self.inputs, self.inputs,
                                                    self.labels, free_bytes, resident)
    return chunk, compiled, sum(resident) + (memory.step_bytes(compiled.program) or 0)

  def train_runner(self, compiled):
    """One train step of every fold with the compiled program (no second compilation)."""
    def run():
      self.state, metrics = compiled(self.state, self.fold_data, self.inputs, self.labels)
      return metrics
    return run

  def eval_runner(self):
    return lambda: self.eval_fn(self.state, self.eval_idx, self.inputs)


def run_bench(config, *, folds: int = 4, steps: int = 5, warmup: int = 1,
              strategies=("vmap", "map", "loop", "sharded"), torch: str = "auto",
              torch_threads: int = 0, peak_tflops: float = 0.0, torch_tuned: bool = False,
              torch_compile: bool = True) -> dict:
  """Every figure of the benchmark as a dict (see the module docstring). `torch_tuned`: PyTorch
  at its best ordinary settings (`benchmarks.torch_bench`), with torch.compile if `torch_compile`."""
  import jax

  from mejax import memory, sharding

  device = jax.devices()[0]
  one = sharding.make_mesh(1, [device])
  c = config
  result: dict[str, Any] = {
      "machine": {"platform": device.platform, "device_kind": device.device_kind,
                  "devices": jax.device_count(), "cpu_count": os.cpu_count(),
                  "python": platform.python_version(), "jax": jax.__version__,
                  "host": platform.machine(), "xla_flags": os.environ.get("XLA_FLAGS", "")},
      "config": {"model": c.model.name, "width_multiplier": c.model.get("width_multiplier", 1.0),
                 "conv_lowering": c.model.get("conv_lowering", "xla"),
                 "dtype": c.model.get("dtype", "float32"), "batch_size": c.train.batch_size,
                 "eval_batch_size": c.eval.batch_size,
                 "clip": list(views.view_shape(c.data))},
  }

  # One fold on one device, no fold axis in the program ('loop' of one fold): the unit of work
  # everything else is compared with, and the step the PyTorch baseline is compared with.
  single = RandomSweep(c, 1, one, "loop")
  compile_s, compiled, cost, step_need = single.compile_train()
  step_s, times = median_seconds(single.train_runner(compiled), steps, warmup)
  flops = _model_flops(c, one) or float(cost.get("flops", 0.0)) or None
  peak = peak_tflops or PEAK_TFLOPS.get((device.device_kind, str(single.dtype)))
  train = {"compile_seconds": compile_s, "seconds_per_step": step_s,
           "clips_per_second": single.batch / step_s, "times": times,
           "flops_per_step": flops,
           "achieved_tflops": flops / step_s / 1e12 if flops else None,
           "peak_tflops": peak,
           "utilisation": flops / step_s / 1e12 / peak if flops and peak else None,
           "step_bytes": step_need}
  result["train"] = train
  start = time.perf_counter()
  jax.block_until_ready(single.eval_runner()())
  eval_compile = time.perf_counter() - start
  eval_s, _ = median_seconds(single.eval_runner(), steps, warmup)
  result["eval"] = {"compile_seconds": eval_compile, "seconds_per_step": eval_s,
                    "clips_per_second": single.eval_batch / eval_s}
  del single

  # The fold axis: F folds in one sweep versus F one-fold steps.
  result["fold_axis"] = []
  for strategy in [s for s in strategies if s]:
    if strategy == "sharded":
      if jax.device_count() < 2:
        continue
      mesh, kind = sharding.make_mesh(1), "vmap"
    else:
      mesh, kind = one, strategy
    sweep = RandomSweep(c, folds, mesh, kind)
    compile_s, compiled, _, _ = sweep.compile_train()
    sweep_s, _ = median_seconds(sweep.train_runner(compiled), steps, warmup)
    result["fold_axis"].append({
        "strategy": strategy, "folds": sweep.num_folds, "devices": mesh.size,
        "compile_seconds": compile_s, "seconds_per_step": sweep_s,
        "separate_seconds": sweep.num_folds * step_s,
        "sweep_over_separate": sweep_s / (sweep.num_folds * step_s),
        "clips_per_second": sweep.num_folds * sweep.batch / sweep_s})
    del sweep

  result["torch"] = torch_baseline(c, torch, torch_threads, steps, warmup, device.platform,
                                    tuned=torch_tuned, compile_model=torch_compile)
  if result["torch"].get("train"):
    result["jax_over_torch_train_time"] = step_s / result["torch"]["train"]["seconds_per_step"]
  if result["torch"].get("eval"):
    result["jax_over_torch_eval_time"] = eval_s / result["torch"]["eval"]["seconds_per_step"]

  result["memory"] = {"peak_host_rss_bytes": _peak_rss_bytes(),
                      "device": memory.device_memory_report(device)}
  return result


def _cost_dict(lowered_or_compiled) -> dict:
  """XLA's cost analysis as one dict (older jax returned a list, one dict per program)."""
  cost = lowered_or_compiled.cost_analysis() or {}
  if isinstance(cost, list):
    cost = cost[0] if cost else {}
  return cost


def _model_flops(config, mesh) -> float | None:
  """FLOPs of one train step from XLA's cost analysis of the step with XLA's own convolutions.

  The CPU lowerings run convolutions inside `lax.map`/`scan` loops, whose bodies the cost analysis
  counts once, so their own programs under-count; the 'xla' program is the model's real work.
  """
  c = config.copy_and_resolve_references()
  if "conv_lowering" in c.model:
    c.model.conv_lowering = "xla"
  return float(_cost_dict(RandomSweep(c, 1, mesh, "loop").lower_train()).get("flops", 0.0)) or None


def _peak_rss_bytes() -> int:
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return int(rss if sys.platform == "darwin" else rss * 1024)


def torch_baseline(c, mode: str, threads: int, steps: int, warmup: int, platform_name: str,
                    tuned: bool = False, compile_model: bool = True) -> dict:
  if mode == "off":
    return {"skipped": "--torch=off"}
  try:
    import torch  # noqa: F401
    from benchmarks import torch_bench
  except ImportError as e:
    if mode == "on":
      raise RuntimeError("--torch=on but the PyTorch baseline cannot be imported "
                         f"({e}); pip install 'mejax[bench]' (torch==2.13.0)") from e
    return {"skipped": f"torch not importable ({e})"}
  if c.model.name not in ("r3d18", "convlstm_ae"):
    return {"skipped": f"no PyTorch baseline of {c.model.name} (only r3d18 and convlstm_ae)"}
  kwargs = {}
  if c.model.name == "convlstm_ae":
    kwargs = {"peephole": c.model.get("peephole", False)}
  channels = 1 if c.data.grey else 3
  device = "cuda" if platform_name == "gpu" else "cpu"
  bf16 = c.model.get("dtype", "float32") == "bfloat16"
  common = dict(batch_size=c.train.batch_size, num_frames=c.data.num_frames, size=c.data.size,
                channels=channels, num_classes=3, steps=steps, warmup=warmup,
                threads=threads or None, device=device, bf16=bf16, tuned=tuned,
                compile_model=compile_model)
  model = torch_bench.build_model(c.model.name, 3, c.model.width_multiplier, channels, **kwargs)
  out = {"train": torch_bench.time_train_step(model, **common)}
  common["batch_size"] = c.eval.batch_size
  out["eval"] = torch_bench.time_eval_step(model, **common)
  for part in out.values():
    part.pop("times", None)
  return out


def markdown(result: dict) -> str:
  """The figures as a markdown table (the form docs/benchmarks.md uses)."""
  m, cfg, tr, ev = result["machine"], result["config"], result["train"], result["eval"]
  fmt = lambda v, f="{:.3g}": "n/a" if v is None else f.format(v)
  lines = [f"Machine: {m['platform']} ({m['device_kind']}), {m['devices']} device(s), "
           f"{m['cpu_count']} CPU cores, jax {m['jax']}. Model {cfg['model']} x"
           f"{cfg['width_multiplier']:.4g}, clip {'x'.join(map(str, cfg['clip']))}, batch "
           f"{cfg['batch_size']}, {cfg['dtype']}, conv lowering {cfg['conv_lowering']}.", "",
           "| measurement | value |", "| --- | --- |",
           f"| train step (1 fold) | {fmt(tr['seconds_per_step'])} s, "
           f"{fmt(tr['clips_per_second'])} clips/s |",
           f"| train compile | {fmt(tr['compile_seconds'])} s |",
           f"| model FLOPs per train step (XLA) | {fmt(tr['flops_per_step'])} |",
           f"| achieved / peak | {fmt(tr['achieved_tflops'])} / {fmt(tr['peak_tflops'])} TFLOP/s"
           f" ({fmt(tr['utilisation'], '{:.1%}')}) |",
           f"| eval step (batch {cfg['eval_batch_size']}) | {fmt(ev['seconds_per_step'])} s, "
           f"{fmt(ev['clips_per_second'])} clips/s (compile {fmt(ev['compile_seconds'])} s) |",
           f"| compiled train step memory | {fmt(tr['step_bytes'] and tr['step_bytes'] / 2**20)}"
           " MiB |",
           f"| peak host RSS | {result['memory']['peak_host_rss_bytes'] / 2**30:.2f} GiB |"]
  dev = result["memory"]["device"]
  if dev:
    lines.append(f"| device memory peak | {dev.get('peak_bytes_in_use', 0) / 2**30:.2f} GiB |")
  t = result["torch"]
  if t.get("train"):
    lines.append(f"| PyTorch {t['train']['torch_version']} train step | "
                 f"{fmt(t['train']['seconds_per_step'])} s ({t['train']['threads']} threads) |")
    lines.append(f"| JAX / PyTorch train step time | {fmt(result['jax_over_torch_train_time'])} |")
    lines.append(f"| PyTorch eval step | {fmt(t['eval']['seconds_per_step'])} s; JAX / PyTorch "
                 f"{fmt(result['jax_over_torch_eval_time'])} |")
  else:
    lines.append(f"| PyTorch baseline | {t.get('skipped')} |")
  if result["fold_axis"]:
    lines += ["", "| fold strategy | folds | devices | s / step | F single-fold steps | "
              "sweep / separate | clips/s | compile s |", "| --- | --- | --- | --- | --- | --- | "
              "--- | --- |"]
    for r in result["fold_axis"]:
      lines.append(f"| {r['strategy']} | {r['folds']} | {r['devices']} | "
                   f"{fmt(r['seconds_per_step'])} | {fmt(r['separate_seconds'])} | "
                   f"{fmt(r['sweep_over_separate'])} | {fmt(r['clips_per_second'])} | "
                   f"{fmt(r['compile_seconds'])} |")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Run from a checkout: the PyTorch baseline lives beside the package, in benchmarks/.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  result = run_bench(flags.FLAGS.config, folds=_FOLDS.value, steps=_STEPS.value,
                     warmup=_WARMUP.value, strategies=tuple(_STRATEGIES.value),
                     torch=_TORCH.value, torch_threads=_TORCH_THREADS.value,
                     peak_tflops=_PEAK_TFLOPS.value)
  print(markdown(result))
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(result, f, indent=1, default=str)


if __name__ == "__main__":
  config_files.run_command(main)
