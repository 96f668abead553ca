"""python -m mejax.gpu_check --out OUT [--dry_run]: the GPU validation in one call.

`launch/gpu_check.sh OUT` runs it. It writes OUT/gpu_check.json (every figure) and
OUT/gpu_check.md (the tables of docs/benchmarks.md), section by section as each ends:

1. `convlstm`: the paper's ConvLSTM autoencoder (paper sizes, bf16 compute, batch 64): clips/s,
   achieved TFLOP/s and the share of the device's bf16 peak, against PyTorch on the same device
   in the same run at its best ordinary settings (bf16 autocast, channels-last-3d, cuDNN
   autotuning, torch.compile where it compiles).
2. `r3d18`: R3D-18 at the standard 16x112x112 clip, the same comparison.
3. `fold_axis`: the fold axis on one device, vmap / map / loop at F = 8, 24 and 68 folds of the
   megc_sweep config: sweep clips/s against F separate one-fold steps, and against PyTorch
   running the folds one after another (what users do today).
4. `megc_sweep`: the 68-fold MEGC2019-sized LOSO sweep (442 clips): 3 epochs timed (training
   steps and one test evaluation), extrapolated to 50 epochs; the memory planner's predicted
   peak against the device's measured one.

Clips are random (no dataset, no TensorFlow: GPU images often lack it), so the figures are speed
and memory only. `--dry_run` runs every section at tiny sizes on any backend (CI runs it on the
CPU, so this script cannot rot); its figures mean nothing.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import sys
import time
from typing import Any

import numpy as np
from mejax import bench
from mejax import cli
from mejax import config_files
from mejax import train

CONVLSTM = "configs/convlstm.py"
SECTIONS = ("convlstm", "r3d18", "fold_axis", "megc_sweep")
# The targets on a GPU (docs/benchmarks.md).
TARGETS = {"utilisation": 0.35, "clips_over_torch": 1.5, "megc_50_epochs_seconds": 15 * 60}

# Overrides of each section's config: the real sizes, and the dry run's tiny ones.
_FULL = {
    "convlstm": {"model.dtype": "bfloat16", "model.conv_lowering": "xla",
                 "train.batch_size": 64, "eval.batch_size": 64},
    "r3d18": {"model.name": "r3d18", "model.dtype": "bfloat16", "model.conv_lowering": "xla",
              "data.num_frames": 16, "data.size": 112, "train.batch_size": 64,
              "eval.batch_size": 64},
    "megc_sweep": {"model.conv_lowering": "xla"},
}
_TINY = {"data.size": 16, "data.num_frames": 4, "train.batch_size": 2, "eval.batch_size": 4,
         "model.width_multiplier": 1 / 32}
_FOLDS = {False: (8, 24, 68), True: (2,)}
# The megc_sweep's shape: MEGC2019's 68 subjects and 442 clips (synthetic_me/megc_sized).
_MEGC = {False: (68, 442), True: (4, 24)}
_EPOCHS_TIMED, _EPOCHS_EXTRAPOLATED = 3, 50


def section_config(name: str, dry_run: bool):
  """The config a section measures (`name` in SECTIONS)."""
  preset = "megc_sweep" if name in ("fold_axis", "megc_sweep") else None
  config = config_files.load(CONVLSTM, preset)
  overrides = dict(_FULL.get("megc_sweep" if name == "fold_axis" else name, {}))
  if dry_run:
    overrides.update(_TINY)
  with config.unlocked():
    for dotted, value in overrides.items():
      config_files.set_dotted(config, dotted, value)
  return config


def model_section(name: str, dry_run: bool, steps: int, torch: str) -> dict:
  """Sections 1 and 2: one fold's train and eval steps against PyTorch's, tuned."""
  result = bench.run_bench(section_config(name, dry_run), folds=1, steps=steps, warmup=2,
                           strategies=(), torch=torch, torch_tuned=True,
                           torch_compile=not dry_run)
  torch_train = result["torch"].get("train")
  result["clips_over_torch"] = (result["train"]["clips_per_second"]
                                / torch_train["clips_per_second"] if torch_train else None)
  return result


def fold_axis_section(dry_run: bool, steps: int, torch: str) -> dict:
  """Section 3: F folds in one program per strategy against F one-fold steps and PyTorch's."""
  import jax

  from mejax import memory, sharding
  config = section_config("fold_axis", dry_run)
  one = sharding.make_mesh(1, [jax.devices()[0]])
  single = bench.RandomSweep(config, 1, one, "loop")
  _, compiled, _, _ = single.compile_train()
  step_s, _ = bench.median_seconds(single.train_runner(compiled), steps, 1)
  del single
  torch_step = bench.torch_baseline(config, torch, 0, steps, 1, jax.devices()[0].platform,
                                     tuned=True, compile_model=not dry_run).get("train")
  rows = []
  for folds in _FOLDS[dry_run]:
    for strategy in ("vmap", "map", "loop"):
      sweep = bench.RandomSweep(config, folds, one, strategy)
      start = time.perf_counter()
      chunk, compiled, predicted = sweep.compile_planned(
          memory.device_free_bytes(jax.devices()[0]))
      compile_s = time.perf_counter() - start
      sweep_s, _ = bench.median_seconds(sweep.train_runner(compiled), steps, 1)
      clips = folds * sweep.batch
      rows.append({
          "strategy": strategy, "folds": folds, "fold_chunk": chunk,
          "compile_seconds": compile_s, "seconds_per_step": sweep_s,
          "clips_per_second": clips / sweep_s,
          "separate_clips_per_second": clips / (folds * step_s),
          "sweep_over_separate_speed": (folds * step_s) / sweep_s,
          "torch_sequential_clips_per_second": (
              torch_step["clips_per_second"] if torch_step else None),
          "sweep_over_torch_speed": (clips / sweep_s / torch_step["clips_per_second"]
                                     if torch_step else None),
          "predicted_peak_bytes": predicted})
      del sweep, compiled
  return {"config": _config_summary(config), "one_fold_seconds_per_step": step_s,
          "torch_train": torch_step, "rows": rows}


def megc_sweep_section(dry_run: bool) -> dict:
  """Section 4: the 68-fold LOSO sweep, 3 epochs timed and extrapolated to 50."""
  import jax

  from mejax import memory, sharding, steps as steps_lib
  config = section_config("megc_sweep", dry_run)
  subjects, clips = _MEGC[dry_run]
  subject = np.arange(clips) % subjects
  train_mask = subject[None, :] != np.arange(subjects)[:, None]   # leave one subject out
  device = jax.devices()[0]
  one = sharding.make_mesh(1, [device])
  strategy = steps_lib.resolve_strategy(config.train.fold_strategy, device.platform, 1)
  sweep = bench.RandomSweep(config, subjects, one, strategy, num_samples=clips,
                            train_mask=train_mask)
  start = time.perf_counter()
  chunk, compiled, predicted = sweep.compile_planned(memory.device_free_bytes(device))
  compile_s = time.perf_counter() - start
  run = sweep.train_runner(compiled)
  steps_per_epoch = sweep.sweep.steps_per_epoch
  jax.block_until_ready(run())   # the first step outside the clock, as training's compile is
  # The test evaluation as training runs it, host round trip per chunk included.
  tests = train.Evaluator(sweep.sweep.eval_program(chunk),
                          [np.flatnonzero(~m) for m in train_mask], config.eval.batch_size)

  def evaluate():
    return tests.logits(sweep.state, sweep.inputs, sweep.sweep.fold_sharding)

  evaluate()   # compiles the eval program
  start = time.perf_counter()
  train_s = eval_s = 0.0
  for _ in range(_EPOCHS_TIMED):
    t0 = time.perf_counter()
    for _ in range(steps_per_epoch):
      metrics = run()
    jax.block_until_ready(metrics)
    t1 = time.perf_counter()
    evaluate()
    train_s, eval_s = train_s + t1 - t0, eval_s + time.perf_counter() - t1
  timed = time.perf_counter() - start
  per_epoch = timed / _EPOCHS_TIMED
  measured = memory.device_memory_report(device).get("peak_bytes_in_use")
  return {"config": _config_summary(config), "folds": subjects, "clips": clips,
          "strategy": sweep.sweep.strategy, "fold_chunk": chunk, "compile_seconds": compile_s,
          "steps_per_epoch": steps_per_epoch, "epochs_timed": _EPOCHS_TIMED,
          "seconds_timed": timed, "train_seconds": train_s, "eval_seconds": eval_s,
          "seconds_per_epoch": per_epoch,
          "extrapolated_epochs": _EPOCHS_EXTRAPOLATED,
          "extrapolated_seconds": per_epoch * _EPOCHS_EXTRAPOLATED + compile_s,
          "predicted_peak_bytes": predicted, "measured_peak_bytes": measured}


def _config_summary(config) -> dict:
  from mejax.data import views
  return {"model": config.model.name, "dtype": config.model.get("dtype", "float32"),
          "width_multiplier": config.model.get("width_multiplier", 1.0),
          "batch_size": config.train.batch_size, "clip": list(views.view_shape(config.data))}


def run(out: pathlib.Path, dry_run: bool = False, sections=SECTIONS, steps: int = 5,
        torch: str = "auto") -> dict:
  """Runs `sections`, writing OUT/gpu_check.json and .md after each; returns the figures."""
  import jax
  out.mkdir(parents=True, exist_ok=True)
  device = jax.devices()[0]
  result: dict[str, Any] = {"dry_run": dry_run, "device": device.device_kind,
                            "platform": device.platform, "jax": jax.__version__,
                            "targets": TARGETS}
  for name in sections:
    start = time.perf_counter()
    if name in ("convlstm", "r3d18"):
      result[name] = model_section(name, dry_run, steps, torch)
    elif name == "fold_axis":
      result[name] = fold_axis_section(dry_run, steps, torch)
    else:
      result[name] = megc_sweep_section(dry_run)
    result[name]["section_seconds"] = time.perf_counter() - start
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "gpu_check.md").write_text(markdown(result))
  return result


def _fmt(value, spec="{:.3g}") -> str:
  return "n/a" if value is None else spec.format(value)


def _verdict(value, target, higher_is_better=True) -> str:
  if value is None:
    return "not measured"
  return "met" if (value >= target if higher_is_better else value <= target) else "missed"


def markdown(result: dict) -> str:
  """The figures as the Markdown tables of docs/benchmarks.md."""
  lines = [f"Device: {result['device']} ({result['platform']}), jax {result['jax']}"
           + (" — DRY RUN at tiny sizes: these figures mean nothing" if result["dry_run"] else "")]
  models = [n for n in ("convlstm", "r3d18") if n in result]
  if models:
    lines += ["", "| model | clip | batch | dtype | clips/s | TFLOP/s | % of peak | PyTorch "
              "clips/s (tuned) | torch.compile | JAX / PyTorch clips/s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name in models:
      r = result[name]
      tr, cfg, tt = r["train"], r["config"], r["torch"].get("train") or {}
      lines.append(
          f"| {cfg['model']} | {'x'.join(map(str, cfg['clip']))} | {cfg['batch_size']} | "
          f"{cfg['dtype']} | {_fmt(tr['clips_per_second'])} | {_fmt(tr['achieved_tflops'])} | "
          f"{_fmt(tr['utilisation'], '{:.1%}')} | {_fmt(tt.get('clips_per_second'))} | "
          f"{tt.get('torch_compile', r['torch'].get('skipped', 'n/a'))} | "
          f"{_fmt(r['clips_over_torch'])} |")
  if "fold_axis" in result:
    r = result["fold_axis"]
    lines += ["", f"Fold axis ({r['config']['model']}, batch {r['config']['batch_size']}, "
              f"{r['config']['dtype']}; one fold alone: {_fmt(r['one_fold_seconds_per_step'])} "
              "s per step):", "",
              "| strategy | F | chunk | s / step | clips/s | x F separate runs | x PyTorch "
              "folds in turn | predicted peak GiB | compile s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
      lines.append(
          f"| {row['strategy']} | {row['folds']} | {row['fold_chunk']} | "
          f"{_fmt(row['seconds_per_step'])} | {_fmt(row['clips_per_second'])} | "
          f"{_fmt(row['sweep_over_separate_speed'])} | {_fmt(row['sweep_over_torch_speed'])} | "
          f"{_fmt(row['predicted_peak_bytes'] / 2**30)} | {_fmt(row['compile_seconds'])} |")
  if "megc_sweep" in result:
    r = result["megc_sweep"]
    measured = r["measured_peak_bytes"]
    lines += ["", f"MEGC-sized sweep: {r['folds']} LOSO folds, {r['clips']} clips, "
              f"{r['strategy']} in chunks of {r['fold_chunk']}, {r['steps_per_epoch']} steps per "
              f"epoch: {r['epochs_timed']} epochs in {_fmt(r['seconds_timed'])} s (training "
              f"{_fmt(r['train_seconds'])} s, test evaluation {_fmt(r['eval_seconds'])} s), "
              f"{r['extrapolated_epochs']} epochs ~ {_fmt(r['extrapolated_seconds'] / 60)} min "
              f"with the {_fmt(r['compile_seconds'])} s compile. Memory: planner "
              f"{_fmt(r['predicted_peak_bytes'] / 2**30)} GiB predicted, "
              f"{_fmt(measured and measured / 2**30)} GiB measured peak."]
  targets = result["targets"]
  checks = []
  if "convlstm" in result:
    checks.append(("paper model >= 35 % of bf16 peak",
                   _verdict(result["convlstm"]["train"]["utilisation"], targets["utilisation"])))
    checks.append(("paper model >= 1.5x PyTorch's clips/s",
                   _verdict(result["convlstm"]["clips_over_torch"],
                            targets["clips_over_torch"])))
  if "megc_sweep" in result:
    checks.append(("68 folds x 50 epochs under 15 min",
                   _verdict(result["megc_sweep"]["extrapolated_seconds"],
                            targets["megc_50_epochs_seconds"], higher_is_better=False)))
  if checks and not result["dry_run"]:
    lines += ["", "| target | result |", "|---|---|"] + [f"| {t} | {v} |" for t, v in checks]
  return "\n".join(lines) + "\n"


def main(argv=None) -> None:
  parser = cli.ArgumentParser(prog="python -m mejax.gpu_check",
                              description="The GPU validation in one call (launch/gpu_check.sh).")
  parser.add_argument("--out", required=True, help="Folder for gpu_check.json and gpu_check.md.")
  parser.add_argument("--dry_run", action="store_true",
                      help="Every section at tiny sizes, on any backend (what CI runs).")
  parser.add_argument("--sections", default=",".join(SECTIONS),
                      help=f"Comma-separated sections to run, in order ({', '.join(SECTIONS)}).")
  parser.add_argument("--steps", type=cli.positive(int), default=5,
                      help="Timed steps per measurement (median reported).")
  parser.add_argument("--torch", choices=("auto", "on", "off"), default="auto",
                      help="The PyTorch baseline: 'auto' runs it when torch imports.")
  args = parser.parse_args(argv)
  sections = tuple(s for s in args.sections.split(",") if s)
  unknown = [s for s in sections if s not in SECTIONS]
  if unknown:
    parser.error(f"--sections: unknown {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
  logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s: %(message)s")
  try:
    result = run(pathlib.Path(args.out), dry_run=args.dry_run, sections=sections,
                 steps=args.steps, torch=args.torch)
  except config_files.USER_ERRORS + (MemoryError,) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(markdown(result))
  print(f"Wrote {args.out}/gpu_check.json and gpu_check.md")


if __name__ == "__main__":
  # Run from a checkout: the PyTorch baseline lives beside the package, in benchmarks/.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  main()
