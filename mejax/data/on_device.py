"""Work done on device inside the step: class-weighted sampling, augmentation, normalisation.

Everything here is a pure function of one fold's arrays, vmapped over the fold axis by
`mejax.steps`. The whole view stays on the devices; a step draws indices, gathers and augments.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


def class_counts(labels: np.ndarray, masks: np.ndarray, num_classes: int) -> np.ndarray:
  """Per-fold class counts of the samples a mask selects: [F, C]."""
  onehot = np.eye(num_classes, dtype=np.int64)[labels]
  return masks.astype(np.int64) @ onehot


def inverse_frequency_weights(counts: np.ndarray) -> np.ndarray:
  """n / (C_present * count) per class and fold; 0 for a class absent from the training set.

  A fold missing a class keeps finite weights (the trainer warns about it); the weighted mean
  of the present classes is 1, as in scikit-learn's "balanced" weighting.
  """
  counts = counts.astype(np.float64)
  present = (counts > 0).sum(-1, keepdims=True)
  total = counts.sum(-1, keepdims=True)
  with np.errstate(divide="ignore", invalid="ignore"):
    weights = np.where(counts > 0, total / (np.maximum(present, 1) * counts), 0.0)
  return weights.astype(np.float32)


def sampling_probabilities(labels: np.ndarray, train_mask: np.ndarray, counts: np.ndarray,
                           balanced: bool) -> np.ndarray:
  """[F, N] probability of drawing each sample in a fold's train step.

  balanced: every class present in the fold's training set is drawn equally often (PyTorch's
  WeightedRandomSampler with 1/class-count weights); otherwise uniform over training samples.
  Samples outside the training mask (test subject, validation) have probability exactly 0.
  """
  weights = inverse_frequency_weights(counts)[:, labels] if balanced else np.ones(train_mask.shape)
  p = np.where(train_mask, weights, 0.0)
  total = p.sum(-1, keepdims=True)
  if np.any(total == 0):
    empty = np.flatnonzero(total[:, 0] == 0).tolist()
    raise ValueError(f"Folds {empty} have no training samples")
  return (p / total).astype(np.float32)


def sample_indices(key: jax.Array, probabilities: jax.Array, batch_size: int) -> jax.Array:
  """Draws a minibatch of indices with replacement (one fold)."""
  return jax.random.choice(key, probabilities.shape[0], (batch_size,), replace=True,
                           p=probabilities)


def gather_clips(key: jax.Array, inputs: jax.Array, idx: jax.Array,
                 view_variants: bool) -> jax.Array:
  """The clips of a minibatch: inputs[idx]; with view variants (inputs [K, N, ...], e.g. one
  view per magnification factor) each sample comes from one of the K, drawn uniformly."""
  if not view_variants:
    return inputs[idx]
  variant = jax.random.randint(key, idx.shape, 0, inputs.shape[0])
  return inputs[variant, idx]


def normalise(clips_uint8: jax.Array, mean, std, dtype=jnp.float32) -> jax.Array:
  x = clips_uint8.astype(jnp.float32) / 255.0
  x = (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
  return x.astype(dtype)


@dataclasses.dataclass(frozen=True)
class InputTransform:
  """uint8 view clips [N, T, H, W, C] -> the model's float32 input, on device.

  mean, std: per-channel statistics of [0, 1] pixels (the backbone's pre-training statistics).
  relative_to_first_frame: subtract the (normalised) first frame from every frame. For the
    onset -> apex view the first frame is the onset, so the input keeps only what moved and the
    static face (identity, lighting) is gone; frame 0 becomes zeros. Flip and rotation are linear
    and the same for every frame, so applying them before or after this gives the same input.
  mirror_negated: channels whose sign a horizontal mirror reverses, stored around the uint8
    midpoint 127.5 (a flow view's horizontal component u, `views.flow_to_uint8`); see `mirror`.
  """
  mean: tuple[float, ...]
  std: tuple[float, ...]
  relative_to_first_frame: bool = False
  mirror_negated: tuple[int, ...] = ()

  @property
  def mirror_centres(self) -> tuple[tuple[int, float], ...]:
    """(channel, the input value of its stored midpoint 127.5) of the `mirror_negated` channels:
    the value a mirror reflects them about (0 once relative to the first frame)."""
    return tuple((c, 0.0 if self.relative_to_first_frame else
                  (127.5 / 255.0 - self.mean[c]) / self.std[c]) for c in self.mirror_negated)

  def __call__(self, clips_uint8: jax.Array) -> jax.Array:
    x = normalise(clips_uint8, self.mean, self.std)
    if self.relative_to_first_frame:
      x = x - x[:, :1]
    return x


def _rotate_clip(clip: jax.Array, angle: jax.Array) -> jax.Array:
  """Rotates every frame of a (T, H, W, C) clip by `angle` radians about the centre.

  Bilinear sampling with edge replication, so no black corners enter the input.
  """
  _, h, w, _ = clip.shape
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
  yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                        indexing="ij")
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  # Inverse mapping: output pixel -> source location.
  src_x = cos * (xx - cx) + sin * (yy - cy) + cx
  src_y = -sin * (xx - cx) + cos * (yy - cy) + cy
  x0 = jnp.floor(src_x)
  y0 = jnp.floor(src_y)
  wx = (src_x - x0)[None, :, :, None]
  wy = (src_y - y0)[None, :, :, None]

  def at(y, x):
    y = jnp.clip(y, 0, h - 1).astype(jnp.int32)
    x = jnp.clip(x, 0, w - 1).astype(jnp.int32)
    return clip[:, y, x, :]

  top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
  bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
  return (top * (1 - wy) + bottom * wy).astype(clip.dtype)


def mirror(clips: jax.Array, centres: tuple[tuple[int, float], ...] = ()) -> jax.Array:
  """Horizontal mirror of (N, T, H, W, C) model inputs. The channels of `centres` ((channel,
  value of zero), `InputTransform.mirror_centres`: a flow view's u) are reflected about their
  zero as well, x -> 2 zero - x: the flow of a mirrored clip points the other way. Mirroring
  twice gives the input back (up to float rounding)."""
  clips = clips[:, :, :, ::-1, :]
  for channel, zero in centres:
    clips = clips.at[..., channel].set(2 * zero - clips[..., channel])
  return clips


def augment(key: jax.Array, clips: jax.Array, flip: bool, rotate_degrees: float,
            mirror_centres: tuple[tuple[int, float], ...] = ()) -> jax.Array:
  """Random horizontal flip (p = 0.5, `mirror` with `mirror_centres`) and rotation in
  [-deg, +deg], one draw per clip.

  Applied to training minibatches only, after the split.
  """
  if not flip and rotate_degrees <= 0:
    return clips
  flip_key, rot_key = jax.random.split(key)
  n = clips.shape[0]
  if flip:
    do_flip = jax.random.bernoulli(flip_key, 0.5, (n,))
    clips = jnp.where(do_flip[:, None, None, None, None], mirror(clips, mirror_centres), clips)
  if rotate_degrees > 0:
    angles = jax.random.uniform(rot_key, (n,), minval=-rotate_degrees, maxval=rotate_degrees)
    clips = jax.vmap(_rotate_clip)(clips, jnp.deg2rad(angles))
  return clips


def smooth(key: jax.Array, clips: jax.Array, probability: float, max_sigma: float) -> jax.Array:
  """The seed paper's smoothing augmentation (macro clips): with `probability`, every frame of a
  clip is blurred by one Gaussian, sigma ~ U(0.5, max_sigma) pixels per clip (separable, edge
  pixels repeated, radius ceil(3 max_sigma)). Training minibatches only."""
  if probability <= 0:
    return clips
  n = clips.shape[0]
  apply_key, sigma_key = jax.random.split(key)
  radius = max(1, int(np.ceil(3 * max_sigma)))
  offsets = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  sigma = jax.random.uniform(sigma_key, (n, 1), minval=0.5, maxval=max(max_sigma, 0.5))
  weights = jnp.exp(-0.5 * (offsets[None] / sigma) ** 2)
  weights = weights / weights.sum(-1, keepdims=True)
  identity = (offsets == 0).astype(jnp.float32)[None]
  weights = jnp.where(jax.random.bernoulli(apply_key, probability, (n, 1)), weights, identity)

  def blur(clip, w):  # (T, H, W, C), taps [2 radius + 1]
    for axis in (1, 2):
      size = clip.shape[axis]
      pad = [(0, 0)] * clip.ndim
      pad[axis] = (radius, radius)
      padded = jnp.pad(clip, pad, mode="edge")
      clip = sum(w[k] * jax.lax.slice_in_dim(padded, k, k + size, axis=axis)
                 for k in range(2 * radius + 1))
    return clip

  return jax.vmap(blur)(clips, weights.astype(clips.dtype))


def frame_subset(key: jax.Array, clips: jax.Array, fractions: tuple[float, ...]) -> jax.Array:
  """STRCN's random frame selection: per clip, keep a random ordered subset of round(r * T)
  frames (r drawn from `fractions`, e.g. 1.0, 0.9, ..., 0.6) and stretch it back to T frames
  (nearest). Training minibatches only."""
  n, t = clips.shape[:2]
  fraction_key, order_key = jax.random.split(key)
  r = jnp.asarray(fractions, jnp.float32)[
      jax.random.randint(fraction_key, (n,), 0, len(fractions))]
  keep = jnp.clip(jnp.round(r * t), 1, t).astype(jnp.int32)                     # [N]
  scores = jax.random.uniform(order_key, (n, t))
  rank = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)                        # [N, T]
  # Kept frames in time order first, the dropped ones (pushed past T) after them.
  kept = jnp.sort(jnp.where(rank < keep[:, None], jnp.arange(t), t + jnp.arange(t)), axis=1)
  position = (jnp.arange(t)[None] * keep[:, None]) // t                          # [N, T]
  source = jnp.take_along_axis(kept, position, axis=1)
  return jnp.take_along_axis(clips, source.reshape(n, t, 1, 1, 1), axis=1)
