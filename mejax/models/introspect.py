"""What analysis and transfer need to see inside any registered model, without changing it.

Flax's method interception sees every submodule call with its path, inputs and outputs, so:
- the *head* is the module whose output are the logits: the last parameterised module called
  whose output has the class count as its last axis (`fc` of R3D-18, `head` of the ConvLSTM model,
  `dense2` of STCNN, ...);
- the *penultimate features* of a clip are the head's input, averaged over every axis but the
  channels (the ConvLSTM decoder's (T, H, W, F) map becomes F numbers; a Dense head's input is
  already a vector);
- a layer's output can be perturbed by a zero array, whose gradient is the gradient with respect
  to that output (Grad-CAM, `mejax.saliency`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Call:
  """One submodule call: its path ('backbone/layer4'), output shape and whether the module holds
  parameters of its own (not only through children)."""
  path: str
  shape: tuple[int, ...] | None
  own_params: bool


def _path(module: nn.Module) -> str:
  return "/".join(module.path)


def _own_param_modules(variables) -> set[str]:
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables.get("params", {})))
  return {"/".join(path[:-1]) for path in flat}


def calls(model: nn.Module, variables, x) -> list[Call]:
  """The submodule calls of one forward pass, in the order they return (children before their
  parent); traced abstractly, nothing computed."""
  owners = _own_param_modules(variables)
  seen: list[Call] = []

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and context.module.path:
      shape = tuple(out.shape) if hasattr(out, "shape") else None
      path = _path(context.module)
      seen.append(Call(path, shape, path in owners))
    return out

  def forward(variables, x):
    with nn.intercept_methods(record):
      return model.apply(variables, x, train=False)

  jax.eval_shape(forward, variables, x)
  return seen


def head_path(model: nn.Module, variables, x, num_classes: int) -> str:
  """The path of the module that outputs the logits (see the module docstring)."""
  heads = [c.path for c in calls(model, variables, x)
           if c.own_params and c.shape and c.shape[-1] == num_classes]
  if not heads:
    raise ValueError(f"{type(model).__name__}: no parameterised module outputs {num_classes} "
                     "channels; cannot find the classification head")
  return heads[-1]


def last_matching_5d(model: nn.Module, variables, x, pattern: str) -> Call | None:
  """The last call whose path fully matches `pattern` and whose output is (N, T, H, W, C)."""
  regex = re.compile(pattern)
  found = [c for c in calls(model, variables, x)
           if regex.fullmatch(c.path) and c.shape is not None and len(c.shape) == 5]
  return found[-1] if found else None


def apply_with_features(model: nn.Module, variables, x, head: str):
  """(logits [N, C], penultimate features [N, D]): the head's input averaged over every axis but
  the first (batch) and the last (channels)."""
  captured = {}

  def capture(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and _path(context.module) == head:
      captured["x"] = args[0]
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(capture):
    logits = model.apply(variables, x, train=False)
  features = captured["x"]
  if features.ndim > 2:
    features = jnp.mean(features.astype(jnp.float32), axis=tuple(range(1, features.ndim - 1)))
  return logits.astype(jnp.float32), features.astype(jnp.float32)


def apply_perturbed(model: nn.Module, variables, x, layer: str, delta, capture: dict | None = None):
  """Logits with `delta` added to the output of the last call of module `layer` (None or a zero
  delta leaves them unchanged; its gradient is the gradient with respect to that output).
  `capture`, when given, receives that output (perturbed) as capture['out']."""
  count = {"n": 0}
  total = sum(1 for c in calls(model, variables, x) if c.path == layer)

  def perturb(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and _path(context.module) == layer:
      count["n"] += 1
      if count["n"] == total:
        if delta is not None:
          out = out + delta.astype(out.dtype)
        if capture is not None:
          capture["out"] = out
    return out

  with nn.intercept_methods(perturb):
    return model.apply(variables, x, train=False).astype(jnp.float32)


def variable_shapes(variables: Any) -> dict[tuple[str, ...], tuple[int, ...]]:
  """{(collection, *path): shape} of a variables dict (arrays or ShapeDtypeStructs)."""
  return {(collection,) + path: tuple(value.shape)
          for collection in variables
          for path, value in flax.traverse_util.flatten_dict(
              flax.core.unfreeze(dict(variables[collection]))).items()}
