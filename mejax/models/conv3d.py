"""A 3D convolution with a choice of lowering; parameters identical to `flax.linen.Conv`.

XLA's CPU backend runs 3D convolutions far below its matmul speed, and strided ones (with their
input-dilated input gradients) 5-40x slower still (docs/benchmarks.md). Lowerings:

- 'xla': `lax.conv_general_dilated` as is (the right choice on GPU/TPU).
- 'frames2d': a sum over the temporal kernel taps of 2D convolutions on time-strided frame stacks.
- 'im2col': the padded input's kT*kH*kW shifted windows concatenated along channels, then one
  matmul with the kernel reshaped to (kT*kH*kW*in, out).
- 'im2col_t': im2col over (kH, kW) only, one matmul per temporal tap, summed (smaller patches).
- 'auto': per convolution shape on CPU (`auto_lowering`), 'xla' on other backends.

All share the `kernel` (kT, kH, kW, in, out) of `nn.Conv`, so checkpoints and converted
torchvision weights work with any of them; tests/test_conv3d.py checks they agree (forward and
gradients) with 'xla'.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

LOWERINGS = ("xla", "frames2d", "im2col", "im2col_t", "auto")


# 'auto' uses im2col on CPU when the patches of a convolution are at most this many bytes.
AUTO_IM2COL_MAX_PATCH_BYTES = 16 * 2 ** 20


def auto_lowering(kernel_size, strides, input_shape, backend: str | None = None,
                  itemsize: int = 4) -> str:
  """The lowering 'auto' picks for one convolution: per layer shape on CPU, 'xla' elsewhere.

  On XLA:CPU (R3D-18 layers, batch 8, 12x64x64 clips, 2 cores; docs/benchmarks.md):
  - 1x1x1 kernels and temporal stride > 1: 'im2col'. XLA's strided 3D convolutions ran 5-20x
    slower forward + backward (mostly the input gradient, an input-dilated convolution); after the
    stride the patches are small.
  - patches of at most `AUTO_IM2COL_MAX_PATCH_BYTES` (layer4 of R3D-18: 14 MiB): 'im2col', ~2x
    faster than 'frames2d' or 'xla' on such small feature maps (4x4 at 512 channels).
  - otherwise (the stem, stride-1 3x3x3 on large maps): 'frames2d', 1.3-2x faster than 'xla'.
    im2col loses there: its patches (kT*kH*kW times the input) cost more memory traffic than the
    matmul saves on a 2-core machine with ~5 GB/s of memory bandwidth.
  On other backends (GPU, TPU) XLA's own convolution is the right choice.
  `input_shape` is the unpadded (N, T, H, W, C).
  """
  backend = backend or jax.default_backend()
  if backend != "cpu":
    return "xla"
  if tuple(kernel_size) == (1, 1, 1) or strides[0] > 1:
    return "im2col"
  n, t, h, w, c = input_shape
  positions = n * math.prod((size - 1) // s + 1 for size, s in zip((t, h, w), strides))
  if positions * math.prod(kernel_size) * c * itemsize <= AUTO_IM2COL_MAX_PATCH_BYTES:
    return "im2col"
  return "frames2d"


def _gather_taps(x, axis, size, stride, out_size):
  """Concatenates along channels the `size` strided slices of x along `axis` that a kernel of that
  size visits: (..., L, ..., C) -> (..., out_size, ..., size * C), tap-major channels."""
  slices = []
  for offset in range(size):
    start = [0] * x.ndim
    limit = list(x.shape)
    strides = [1] * x.ndim
    start[axis], limit[axis], strides[axis] = offset, offset + (out_size - 1) * stride + 1, stride
    slices.append(lax.slice(x, start, limit, strides))
  return slices[0] if size == 1 else jnp.concatenate(slices, axis=-1)


def conv3d_im2col(x, kernel, strides, padding, per_temporal_tap=False):
  """(N, T, H, W, C) * (kT, kH, kW, C, O) as matmuls over gathered kernel taps (im2col).

  The padded input's kT*kH*kW shifted (strided) windows are concatenated along channels into
  patches (N, T', H', W', kT*kH*kW*C), built one axis at a time (W taps, then H, then T: few, large
  copies), and multiplied by the kernel reshaped to (kT*kH*kW*C, O): one matmul, which XLA:CPU
  runs far faster than its strided 3D convolutions. With `per_temporal_tap`, the (kH*kW*C) patches
  are built once over all padded frames and each temporal tap multiplies its (strided) frames by
  its kernel slice; the kT matmuls are summed (patches 1/kT the size). Autodiff of slices and
  concatenations is pads and adds, so the backward pass is matmuls too.
  """
  kt, kh, kw, c, o = kernel.shape
  x = jnp.pad(x, ((0, 0),) + tuple(tuple(p) for p in padding) + ((0, 0),))
  out_t, out_h, out_w = (
      (size - k) // s + 1 for size, k, s in zip(x.shape[1:4], (kt, kh, kw), strides))
  n = x.shape[0]
  m = n * out_t * out_h * out_w
  patches = _gather_taps(x, 3, kw, strides[2], out_w)
  patches = _gather_taps(patches, 2, kh, strides[1], out_h)
  if per_temporal_tap and kt > 1:
    total = None
    for dt in range(kt):
      frames = lax.slice_in_dim(patches, dt, dt + (out_t - 1) * strides[0] + 1, strides[0], axis=1)
      y = jnp.dot(frames.reshape(m, -1), kernel[dt].reshape(-1, o))
      total = y if total is None else total + y
  else:
    patches = _gather_taps(patches, 1, kt, strides[0], out_t)
    total = jnp.dot(patches.reshape(m, -1), kernel.reshape(-1, o))
  return total.reshape((n, out_t, out_h, out_w, o))


def conv3d_frames2d(x, kernel, strides, padding):
  """(N, T, H, W, C) * (kT, kH, kW, C, O) as kT 2D convolutions over (N * T', H, W, C)."""
  kt = kernel.shape[0]
  st = strides[0]
  x = jnp.pad(x, ((0, 0), tuple(padding[0]), (0, 0), (0, 0), (0, 0)))
  out_t = (x.shape[1] - kt) // st + 1
  total = None
  for dt in range(kt):
    frames = x[:, dt:dt + (out_t - 1) * st + 1:st]
    n, t, h, w, c = frames.shape
    y = lax.conv_general_dilated(frames.reshape(n * t, h, w, c), kernel[dt], tuple(strides[1:]),
                                 tuple(tuple(p) for p in padding[1:]),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y.reshape((n, t) + y.shape[1:])
    total = y if total is None else total + y
  return total


class Conv3D(nn.Module):
  """`nn.Conv` for (N, T, H, W, C) inputs with explicit padding and a selectable lowering."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1, 1)
  padding: Sequence[tuple[int, int]] = ((0, 0), (0, 0), (0, 0))
  use_bias: bool = False
  dtype: Any = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros
  lowering: str = "xla"

  @nn.compact
  def __call__(self, x):
    if self.lowering not in LOWERINGS:
      raise ValueError(f"Unknown conv lowering {self.lowering!r}; known: {LOWERINGS}")
    kernel = self.param("kernel", self.kernel_init,
                        tuple(self.kernel_size) + (x.shape[-1], self.features), jnp.float32)
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    lowering = self.lowering
    if lowering == "auto":
      lowering = auto_lowering(self.kernel_size, self.strides, x.shape,
                                itemsize=jnp.dtype(self.dtype).itemsize)
    if lowering == "xla":
      y = lax.conv_general_dilated(x, kernel, tuple(self.strides),
                                   tuple(tuple(p) for p in self.padding),
                                   dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    elif lowering == "frames2d":
      y = conv3d_frames2d(x, kernel, self.strides, self.padding)
    else:
      y = conv3d_im2col(x, kernel, self.strides, self.padding,
                        per_temporal_tap=lowering == "im2col_t")
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), jnp.float32).astype(self.dtype)
    return y
