"""Where a restored model looks: saliency maps over time and space, and how much of their mass
falls where the face moved.

Two methods, for one clip and one class c (the prediction unless given):
- Grad-CAM (Selvaraju et al. 2017) in 3D: A = the output of the model's last 3D conv block
  (the registry's `saliency_layer`, e.g. R3D-18's `layer4`), alpha_k = the mean over (T', H', W')
  of d logit_c / d A_k, map = ReLU(sum_k alpha_k A_k), resized to the clip's (T, H, W). About
  the features the classifier uses, but coarse: layer4 of a 24 x 24 smoke clip is 2 x 2 (its
  spatial map says little there), of a 64 x 64 paper clip 4 x 4. Only models with such a block.
- gradient x input: |sum over channels of x * d logit_c / d x| at the input's resolution, for
  every model: the pixel-level map (Reddy et al.'s Fig. 4 is a gradient map of this kind).

`motion_mask` marks where a clip moves (the top fraction of sum_t |frame_t - frame_0|, lightly
blurred); `mass_ratio` is a map's share of mass inside that mask over the mask's share of the
frame: 1 means no preference for moving regions, more means the model looks where things move.
"""

from __future__ import annotations

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from mejax import models
from mejax import sweep as sweep_lib
from mejax.models import introspect

METHODS = ("gradcam", "grad_x_input")


def layer_of(run) -> str | None:
  """The module path Grad-CAM weighs for this run's model, or None (no 3D conv block)."""
  pattern = models.entry(run.config.model.name).saliency_layer
  if not pattern:
    return None
  sample = np.zeros((1,) + tuple(run.input_shape), np.float32)
  call = introspect.last_matching_5d(run.model, run.variables[run.fold_names[0]], sample, pattern)
  return call.path if call else None


def methods_of(run) -> tuple[str, ...]:
  """The methods that apply to this run's model: gradient x input always, Grad-CAM first where
  the model has a 3D conv block."""
  return ("gradcam", "grad_x_input") if layer_of(run) else ("grad_x_input",)


def _program(run, method: str, layer: str | None):
  """The jitted map of `method`, made once per run."""
  cache = run.__dict__.setdefault("_saliency_programs", {})
  if method not in cache:
    cache[method] = _make_program(run, method, layer)
  return cache[method]


def _make_program(run, method: str, layer: str | None):
  dtype = sweep_lib.compute_dtype(run.config)

  def selected(logits, classes):
    return jnp.sum(jnp.take_along_axis(logits, classes[:, None], axis=1))

  def grad_x_input(variables, clips, classes):
    x = run.to_input(clips).astype(jnp.float32)
    grad = jax.grad(lambda x: selected(
        run.model.apply(variables, x.astype(dtype), train=False).astype(jnp.float32), classes))(x)
    return jnp.abs(jnp.sum(grad * x, axis=-1))

  def gradcam(variables, clips, classes):
    x = run.to_input(clips).astype(dtype)
    sample = jax.ShapeDtypeStruct(x.shape, x.dtype)
    shape = {}

    def activation_shape(variables, x):
      return introspect.apply_perturbed(run.model, variables, x, layer, None, capture=shape)
    jax.eval_shape(activation_shape, variables, sample)
    activation = shape["out"]
    delta = jnp.zeros(activation.shape, jnp.float32)
    captured = {}

    def score(delta):
      logits = introspect.apply_perturbed(run.model, variables, x, layer, delta, capture=captured)
      return selected(logits, classes), captured["out"]

    grads, acts = jax.grad(score, has_aux=True)(delta)
    weights = jnp.mean(grads, axis=(1, 2, 3))                          # [N, K]
    cam = jax.nn.relu(jnp.einsum("nthwk,nk->nthw", acts.astype(jnp.float32), weights))
    t, h, w = clips.shape[1:4]
    return jax.image.resize(cam, (cam.shape[0], t, h, w), "linear")

  return jax.jit(gradcam if method == "gradcam" else grad_x_input)


def maps(run, fold: str, clips_uint8: np.ndarray, classes: np.ndarray,
         method: str = "grad_x_input", batch_size: int = 16) -> np.ndarray:
  """float32 [N, T, H, W] non-negative maps of fold `fold`'s model for class classes[i] of clip i
  (uint8 views [N, T, H, W, C])."""
  run.check_clips(clips_uint8)
  if method not in METHODS:
    raise ValueError(f"Unknown saliency method {method!r}; known: {METHODS}")
  layer = layer_of(run) if method == "gradcam" else None
  if method == "gradcam" and layer is None:
    raise ValueError(f"{run.config.model.name} has no 3D conv block for Grad-CAM; use "
                     "grad_x_input")
  program = _program(run, method, layer)
  variables = run.fold_variables(fold)
  out = []
  for start in range(0, len(clips_uint8), batch_size):
    part = np.asarray(clips_uint8[start:start + batch_size])
    cls = np.asarray(classes[start:start + batch_size], np.int32)
    pad = batch_size - len(part)  # one compiled shape for every chunk
    if pad:
      part = np.concatenate([part, np.repeat(part[:1], pad, 0)])
      cls = np.concatenate([cls, np.repeat(cls[:1], pad)])
    out.append(np.asarray(program(variables, part, cls))[:batch_size - pad])
  return np.concatenate(out).astype(np.float32)


def motion_energy(clips_uint8: np.ndarray) -> np.ndarray:
  """float32 [N, H, W]: sum over frames of |frame_t - frame_0| (channels averaged), blurred by
  sigma 1 px. One-frame views (flow fields, dynamic images) use |x - 128|, their departure from
  no motion / mid grey."""
  x = np.asarray(clips_uint8, np.float32)
  if x.shape[1] > 1:
    energy = np.abs(x - x[:, :1]).sum(1).mean(-1)
  else:
    energy = np.abs(x[:, 0] - 128.0).mean(-1)
  return np.stack([cv2.GaussianBlur(e, (0, 0), 1.0) for e in energy]).astype(np.float32)


def motion_mask(clips_uint8: np.ndarray, top_fraction: float = 0.1) -> np.ndarray:
  """bool [N, H, W]: the `top_fraction` of each clip's pixels that moved most."""
  energy = motion_energy(clips_uint8)
  flat = energy.reshape(len(energy), -1)
  keep = max(1, int(round(top_fraction * flat.shape[1])))
  order = np.argsort(-flat, axis=1, kind="stable")[:, :keep]
  mask = np.zeros_like(flat, bool)
  np.put_along_axis(mask, order, True, axis=1)
  return mask.reshape(energy.shape)


def mass_ratio(saliency: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """float [N]: (saliency mass inside the mask / total mass) / (mask area / frame area), the
  maps [N, T, H, W] summed over time; NaN for an all-zero map."""
  spatial = saliency.sum(1)
  total = spatial.reshape(len(spatial), -1).sum(1)
  inside = (spatial * mask).reshape(len(spatial), -1).sum(1)
  share = mask.reshape(len(mask), -1).mean(1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(total > 0, inside / total / share, np.nan)
