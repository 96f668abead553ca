"""Times the 3D convolution lowerings of `mejax.models.conv3d` on the current JAX backend.

    python -m benchmarks.conv_lowering                      # whole R3D-18 train step + per layer
    python -m benchmarks.conv_lowering --parts layers --lowerings xla,im2col --reps 5

Two tables, both measured interleaved (candidate A, B, C, A, B, C, ... in one process, medians),
so that a loaded machine slows every candidate alike and the ratios stay readable:

- `step`: the R3D-18 train step of `mejax.steps` in miniature (full width unless --width, batch 8,
  12x64x64x3 clips, channels last, float32): forward with BatchNorm batch statistics, weighted
  cross-entropy, backward, Adam update; seconds per step for each lowering.
- `layers`: every distinct 3D convolution of that R3D-18 (shape, kernel, stride), forward +
  backward (gradients w.r.t. input and kernel; the stem's w.r.t. the kernel only, as in training);
  milliseconds and GFLOP/s (forward + backward = 3x the forward multiply-adds x 2).

XLA flags apply to the whole process: compare them by running this script once per setting,
e.g. `XLA_FLAGS=--xla_cpu_use_xnnpack=false python -m benchmarks.conv_lowering`.
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mejax.models import conv3d, r3d
from mejax import steps


def _block(tree):
  return jax.tree_util.tree_map(lambda a: a.block_until_ready(), tree)


def interleaved(candidates: dict, reps: int, warmup: int = 1) -> dict:
  """{name: zero-arg callable} -> {name: [seconds per call]}, timed A, B, ..., A, B, ..."""
  for fn in candidates.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in candidates}
  for _ in range(reps):
    for name, fn in candidates.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return times


def r3d18_layers(batch: int, frames: int, size: int, width: float = 1.0):
  """Distinct convolutions of R3D-18: (name, input shape, kernel, strides, padding, features, count)."""
  w = [r3d.scaled_width(c, width) for c in r3d.STAGE_WIDTHS]
  layers = [("stem", (batch, frames, size, size, 3), (3, 7, 7), (1, 2, 2), ((1, 1), (3, 3), (3, 3)),
             w[0], 1)]
  t, s = frames, (size + 6 - 7) // 2 + 1
  layers.append(("layer1 3x3x3", (batch, t, s, s, w[0]), (3, 3, 3), (1, 1, 1), ((1, 1),) * 3,
                 w[0], 4))
  c = w[0]
  for index, width_ in enumerate(w[1:], start=2):
    layers.append((f"layer{index}.0 3x3x3/2", (batch, t, s, s, c), (3, 3, 3), (2, 2, 2),
                   ((1, 1),) * 3, width_, 1))
    layers.append((f"layer{index}.0 1x1x1/2", (batch, t, s, s, c), (1, 1, 1), (2, 2, 2),
                   ((0, 0),) * 3, width_, 1))
    t, s = (t + 2 - 3) // 2 + 1, (s + 2 - 3) // 2 + 1
    layers.append((f"layer{index} 3x3x3", (batch, t, s, s, width_), (3, 3, 3), (1, 1, 1),
                   ((1, 1),) * 3, width_, 3))
    c = width_
  return layers


def layer_table(args) -> list[str]:
  rows = []
  key = jax.random.key(0)
  for name, shape, kernel_size, strides, padding, features, count in r3d18_layers(
      args.batch, args.frames, args.size, args.width):
    x = jax.random.normal(key, shape, jnp.float32)
    kernel = jax.random.normal(key, kernel_size + (shape[-1], features), jnp.float32) * 0.05
    wrt = (1,) if name == "stem" else (0, 1)
    fns = {}
    for low in args.lowerings:
      layer = conv3d.Conv3D(features, kernel_size, strides, padding, lowering=low)

      def loss(x_, k_, layer=layer):
        y = layer.apply({"params": {"kernel": k_}}, x_)
        return jnp.sum(y * y) * 0.5

      g = jax.jit(jax.grad(loss, argnums=wrt))
      fns[low] = functools.partial(lambda g: _block(g(x, kernel)), g)
    out_shape = jax.eval_shape(
        lambda: conv3d.Conv3D(features, kernel_size, strides, padding).apply(
            {"params": {"kernel": kernel}}, x)).shape
    macs = np.prod(out_shape) * np.prod(kernel_size) * shape[-1]
    flops = 2 * macs * (2 if name == "stem" else 3)
    times = interleaved(fns, args.reps)
    med = {low: statistics.median(t) for low, t in times.items()}
    best = min(med, key=med.get)
    cells = [f"{med[low] * 1e3:.0f} ms ({flops / med[low] / 1e9:.0f})" for low in args.lowerings]
    rows.append(f"| {name} x{count} | {shape[1:]} -> {features} | " + " | ".join(cells) +
                f" | {best} |")
    print(rows[-1], flush=True)
  header = ["| layer x count | input (T, H, W, C) -> out | " +
            " | ".join(f"{low} ms (GFLOP/s)" for low in args.lowerings) + " | fastest |",
            "| --- | --- | " + " | ".join("---" for _ in args.lowerings) + " | --- |"]
  return header + rows


def make_step(lowering: str, args):
  model = r3d.R3D18(num_classes=args.classes, width_multiplier=args.width, conv_lowering=lowering)
  tx = optax.adam(1e-3)
  x = jax.random.normal(jax.random.key(1), (args.batch, args.frames, args.size, args.size, 3))
  y = jax.random.randint(jax.random.key(2), (args.batch,), 0, args.classes)
  weights = jnp.ones((args.classes,), jnp.float32)
  # Parameters do not depend on the lowering: every candidate starts from the same state.
  variables = jax.jit(lambda k: model.init(k, x[:1], train=False))(jax.random.key(0))
  state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, x, y):
    params, batch_stats, opt_state = state

    def loss_fn(p):
      logits, updated = model.apply({"params": p, "batch_stats": batch_stats}, x, train=True,
                                    mutable=["batch_stats"])
      return steps.weighted_cross_entropy(logits, y, weights), updated["batch_stats"]

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), batch_stats, opt_state), loss

  holder = [state]

  def run():
    holder[0], loss = step(holder[0], x, y)
    loss.block_until_ready()
  return run


def step_table(args) -> list[str]:
  fns = {low: make_step(low, args) for low in args.lowerings}
  times = interleaved(fns, args.reps)
  med = {low: statistics.median(t) for low, t in times.items()}
  base = med.get("xla")
  rows = ["| lowering | s / step (median) | min | x of 'xla' |", "| --- | --- | --- | --- |"]
  for low in args.lowerings:
    rel = f"{med[low] / base:.2f}" if base else "-"
    rows.append(f"| {low} | {med[low]:.3f} | {min(times[low]):.3f} | {rel} |")
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--parts", default="step,layers")
  parser.add_argument("--lowerings", default=",".join(conv3d.LOWERINGS))
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--frames", type=int, default=12)
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--width", type=float, default=1.0)
  parser.add_argument("--classes", type=int, default=3)
  args = parser.parse_args(argv)
  args.lowerings = args.lowerings.split(",")
  parts = args.parts.split(",")
  print(f"jax {jax.__version__}, backend {jax.default_backend()}, {jax.devices()[0].device_kind}, "
        f"{platform.processor() or platform.machine()}; batch {args.batch}, "
        f"{args.frames}x{args.size}x{args.size}x3, width x{args.width}, {args.reps} reps "
        "interleaved", flush=True)
  if "layers" in parts:
    print("\n".join(layer_table(args)), flush=True)
  if "step" in parts:
    print("\n".join(step_table(args)), flush=True)


if __name__ == "__main__":
  main()
