"""Per-layer output shapes and parameter counts of a model, without allocating it.

`summarize(model, input_shape)` traces `model.init` with `jax.eval_shape` and records, through
`flax.linen.intercept_methods`, the output shape of every module call; parameter counts come from
the (abstract) parameter tree. Paper-size models (STCNN's 44 M parameters) cost nothing to
summarise. `python -m mejax.models summary --config CONFIG` prints it for an experiment config.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp


def _shapes(tree) -> Any:
  leaves = [tuple(x.shape) for x in jax.tree_util.tree_leaves(tree) if hasattr(x, "shape")]
  return leaves[0] if len(leaves) == 1 else leaves


def summarize(model: nn.Module, input_shape: Sequence[int], dtype=jnp.float32) -> dict:
  """{'input_shape', 'layers': [{'path', 'module', 'output_shape', 'params'}], 'total_params',
  'batch_stats'}; a layer's `params` counts the parameters it owns directly (shared weights are
  counted once, at their first call)."""
  calls = []

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__":
      calls.append(("/".join(context.module.path), type(context.module).__name__, _shapes(out)))
    return out

  def init():
    key = jax.random.key(0)
    with nn.intercept_methods(record):
      return model.init({"params": key, "dropout": key}, jnp.zeros(input_shape, dtype),
                        train=False)

  variables = jax.eval_shape(init)
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables.get("params", {})))
  owned: dict[str, int] = {}
  for path, leaf in flat.items():
    owner = "/".join(path[:-1])
    owned[owner] = owned.get(owner, 0) + math.prod(leaf.shape)
  layers, seen = [], set()
  for path, module, shape in calls:
    params = owned.get(path, 0) if path not in seen else 0
    seen.add(path)
    layers.append({"path": path or "(model)", "module": module, "output_shape": shape,
                   "params": params})
  stats = jax.tree_util.tree_leaves(variables.get("batch_stats", {}))
  return {"input_shape": list(input_shape), "layers": layers,
          "total_params": sum(math.prod(x.shape) for x in flat.values()),
          "batch_stats": sum(math.prod(x.shape) for x in stats)}


def format_table(summary: dict) -> str:
  rows = [("layer", "module", "output shape", "params")]
  for layer in summary["layers"]:
    shape = layer["output_shape"]
    rows.append((layer["path"], layer["module"], str(tuple(shape) if isinstance(shape, tuple)
                                                     else shape), f"{layer['params']:,}"))
  widths = [max(len(r[i]) for r in rows) for i in range(4)]
  lines = ["  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in
                     enumerate(zip(row, widths))) for row in rows]
  lines.insert(1, "-" * len(lines[0]))
  lines.append(f"input {tuple(summary['input_shape'])}; {summary['total_params']:,} parameters"
               f" ({summary['batch_stats']:,} BatchNorm statistics)")
  return "\n".join(lines)
