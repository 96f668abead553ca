"""Dynamic images by approximate rank pooling (Bilen et al. 2016), as Le et al. 2020 use them.

A clip of T frames I_1..I_T becomes one image

    DI = sum_t alpha_t I_t,   alpha_t = 2 (T - t + 1) - (T + 1) (H_T - H_{t-1}),  t = 1..T,

with H_t = sum_{i<=t} 1/i the harmonic numbers (H_0 = 0). These are Bilen et al.'s coefficients
for rank pooling the time-varying means V_t = (1/t) sum_{i<=t} I_i with the linear weights
2t - T - 1, rewritten in terms of the frames themselves (`rank_pool_weights` docstring), so the
frames are used as they are. The weights sum to 0: a static clip gives DI = 0, and
DI of a linear ramp I_t = I_0 + t S is S (T^3 - T) / 12.

Le et al. pool the magnified clip (`magnify`) and look at the DI through a global min-max
rescaling to 0..255 (`to_uint8`).
"""

from __future__ import annotations

import numpy as np


def rank_pool_weights(num_frames: int) -> np.ndarray:
  """float64 (T,) alpha_1..alpha_T of approximate rank pooling (module docstring).

  alpha_t = 2 (T - t + 1) - (T + 1) (H_T - H_{t-1}) equals sum_{s=t}^{T} (2 s - T - 1) / s, the
  coefficient of I_t once sum_s (2 s - T - 1) V_s is expanded; T = 3 gives [-4/3, 2/3, 2/3].
  """
  if num_frames < 1:
    raise ValueError(f"need at least one frame, got {num_frames}")
  t = np.arange(1, num_frames + 1)
  harmonic = np.concatenate([[0.0], np.cumsum(1.0 / t)])  # H_0 .. H_T
  return 2.0 * (num_frames - t + 1) - (num_frames + 1) * (harmonic[-1] - harmonic[t - 1])


def dynamic_image(clip: np.ndarray) -> np.ndarray:
  """float32 (H, W, C) dynamic image of a (T, H, W, C) clip (uint8 or float, any scale: the DI is
  in the clip's units, e.g. 0..255 clips give values of order 255 T^2 / 12 for full-range change).
  Accumulated in float64.
  """
  clip = np.asarray(clip)
  if clip.ndim != 4 or not len(clip):
    raise ValueError(f"expected a (T, H, W, C) clip, got shape {clip.shape}")
  if not np.issubdtype(clip.dtype, np.number):
    raise ValueError(f"expected a numeric clip, got {clip.dtype}")
  weights = rank_pool_weights(len(clip))
  total = np.zeros(clip.shape[1:], np.float64)
  first = clip[0].astype(np.float64)
  # The weights sum to 0, so pooling I_t - I_0 gives the same image, and exactly 0 where nothing
  # changes (pooling I_t leaves rounding residue that a min-max rescale would blow up to 0..255).
  for weight, frame in zip(weights, clip):  # frame by frame: no float64 copy of the whole clip
    total += weight * (frame - first)
  return total.astype(np.float32)


def to_uint8(images: np.ndarray) -> np.ndarray:
  """uint8 0..255 view of float dynamic image(s): (H, W, C) one image, (N, H, W, C) N images.

  Each image is rescaled by its own global min and max over pixels and channels (rounded to
  nearest); a constant image becomes all 0.
  """
  images = np.asarray(images, np.float64)
  if images.ndim == 3:
    return to_uint8(images[None])[0]
  if images.ndim != 4:
    raise ValueError(f"expected (H, W, C) or (N, H, W, C) images, got shape {images.shape}")
  low = images.min(axis=(1, 2, 3), keepdims=True)
  span = images.max(axis=(1, 2, 3), keepdims=True) - low
  scaled = np.divide(images - low, span, out=np.zeros_like(images), where=span > 0)
  return np.rint(scaled * 255.0).astype(np.uint8)
