"""A 3D convolution with a choice of lowering; parameters identical to `flax.linen.Conv`.

XLA's CPU backend runs 3D convolutions far below its matmul speed, and strided ones (with their
input-dilated input gradients) 5-40x slower still (docs/benchmarks.md). Lowerings:

- 'xla': `lax.conv_general_dilated` as is (the right choice on GPU/TPU).
- 'frames2d': a sum over the temporal kernel taps of 2D convolutions on time-strided frame stacks.
- 'frames2d_vjp': 'frames2d' forward with a hand-written backward (`conv3d_frames2d_vjp`): the
  kernel gradient as per-sample matmuls, the stride-1 input gradient as a 'frames2d' convolution of
  the output gradient with the flipped kernel.
- 'im2col': the padded input's kT*kH*kW shifted windows concatenated along channels, then one
  matmul with the kernel reshaped to (kT*kH*kW*in, out).
- 'im2col_t': im2col over (kH, kW) only, one matmul per temporal tap, summed (smaller patches).
- 'auto': per convolution shape on CPU (`auto_lowering`), 'xla' on other backends.

All share the `kernel` (kT, kH, kW, in, out) of `nn.Conv`, so checkpoints and converted
torchvision weights work with any of them; tests/test_conv3d.py checks they agree (forward and
gradients) with 'xla'.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

LOWERINGS = ("xla", "frames2d", "frames2d_vjp", "im2col", "im2col_t", "auto")


# 'auto' uses im2col on CPU when the patches of a convolution are at most this many bytes.
AUTO_IM2COL_MAX_PATCH_BYTES = 16 * 2 ** 20
# ... and otherwise 'frames2d_vjp' when an output frame has at least this many positions (H' * W'),
# else 'frames2d'.
AUTO_FRAMES2D_VJP_MIN_FRAME_POSITIONS = 256


def auto_lowering(kernel_size, strides, input_shape, backend: str | None = None,
                  itemsize: int = 4) -> str:
  """The lowering 'auto' picks for one convolution: per layer shape on CPU, 'xla' elsewhere.

  On XLA:CPU (R3D-18 layers, batch 8, 12x64x64 clips, 2 cores; docs/benchmarks.md):
  - 1x1x1 kernels and temporal stride > 1: 'im2col'. XLA's strided 3D convolutions ran 5-20x
    slower forward + backward (mostly the input gradient, an input-dilated convolution); after the
    stride the patches are small.
  - patches of at most `AUTO_IM2COL_MAX_PATCH_BYTES` (layer4 of R3D-18: 14 MiB): 'im2col', ~2x
    faster than 'frames2d' or 'xla' on such small feature maps (4x4 at 512 channels).
  - otherwise, output frames of at least `AUTO_FRAMES2D_VJP_MIN_FRAME_POSITIONS` (the stem,
    layer1, layer2: 32x32 and 16x16): 'frames2d_vjp', 'frames2d' with a hand-written backward;
    XLA:CPU's kernel gradient of its 2D convolutions costs ~3x their forward, the per-sample
    matmuls ~1.3x (layer1 fwd + bwd per conv 756 -> 522 ms, layer2 171 -> 140, stem 169 -> 147).
  - smaller stride-1 maps (layer3 of R3D-18, 8x8): 'frames2d', 1.3-2x faster than 'xla'
    (frames2d_vjp loses there: 84 vs 65 ms).
  im2col loses on the larger stride-1 maps: its patches (kT*kH*kW times the input) cost more
  memory traffic than the matmul saves on a 2-core machine with ~5 GB/s of memory bandwidth.
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
  out_h, out_w = ((size - 1) // s + 1 for size, s in zip((h, w), strides[1:]))
  if out_h * out_w >= AUTO_FRAMES2D_VJP_MIN_FRAME_POSITIONS:
    return "frames2d_vjp"
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


def _frames2d_kernel_grad(x, dy, kernel_shape, strides, padding):
  """The kernel gradient of `conv3d_frames2d` (temporal stride 1) as matmuls, one sample at a time.

  Per sample, the (kH*kW*C) spatial patches of every padded frame (T + pads, H', W', kH*kW*C) are
  multiplied by the kT temporal shifts of the output gradient concatenated along channels
  (T + pads, H', W', kT*O): one (kH*kW*C, kT*O) matmul whose diagonal blocks are the kT kernel
  slices. A `lax.scan` over samples keeps the patches small (per sample, not per batch).
  """
  kt, kh, kw, c, o = kernel_shape
  _, _, out_h, out_w, _ = dy.shape
  sh, sw = strides[1:]

  def body(acc, xs):
    xi, dyi = xs
    xp = jnp.pad(xi, tuple(tuple(p) for p in padding) + ((0, 0),))
    patches = jnp.concatenate(
        [xp[:, a:a + (out_h - 1) * sh + 1:sh, b:b + (out_w - 1) * sw + 1:sw]
         for a in range(kh) for b in range(kw)], axis=-1)
    frames = patches.shape[0]
    dpad = jnp.pad(dyi, ((kt - 1, kt - 1), (0, 0), (0, 0), (0, 0)))
    shifted = jnp.concatenate([dpad[kt - 1 - dt:kt - 1 - dt + frames] for dt in range(kt)],
                              axis=-1)
    return acc + jnp.dot(patches.reshape(-1, kh * kw * c).T, shifted.reshape(-1, kt * o),
                         preferred_element_type=jnp.float32), None

  acc = lax.scan(body, jnp.zeros((kh * kw * c, kt * o), jnp.float32), (x, dy))[0]
  return jnp.transpose(acc.reshape(kh, kw, c, kt, o), (3, 0, 1, 2, 4))


# 'frames2d_vjp' runs its forward and stride-1 input-gradient convolutions one sample at a time
# (`lax.map`): ~15% faster than the whole batch at once on XLA:CPU for layer1 of R3D-18.
FRAMES2D_VJP_PER_SAMPLE = True


def _frames2d_per_sample(x, kernel, strides, padding):
  if not FRAMES2D_VJP_PER_SAMPLE:
    return conv3d_frames2d(x, kernel, strides, padding)
  return lax.map(lambda xi: conv3d_frames2d(xi[None], kernel, strides, padding)[0], x)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _frames2d_vjp(x, kernel, strides, padding):
  return _frames2d_per_sample(x, kernel, strides, padding)


def _frames2d_vjp_fwd(x, kernel, strides, padding):
  return _frames2d_per_sample(x, kernel, strides, padding), (x, kernel)


def _frames2d_vjp_bwd(strides, padding, residuals, dy):
  x, kernel = residuals
  ksize = kernel.shape[:3]
  if tuple(strides) == (1, 1, 1) and all(0 <= p <= k - 1 for k, pad in zip(ksize, padding)
                                         for p in pad):
    # Stride 1: the input gradient is the convolution of dy with the flipped, transposed kernel.
    flipped = jnp.swapaxes(kernel[::-1, ::-1, ::-1], 3, 4)
    dx = _frames2d_per_sample(
        dy, flipped, (1, 1, 1),
        tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(ksize, padding)))
  else:
    dx = jax.vjp(lambda v: conv3d_frames2d(v, kernel, strides, padding), x)[1](dy)[0]
  dkernel = _frames2d_kernel_grad(x, dy, kernel.shape, strides, padding)
  return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


_frames2d_vjp.defvjp(_frames2d_vjp_fwd, _frames2d_vjp_bwd)


def conv3d_frames2d_vjp(x, kernel, strides, padding):
  """`conv3d_frames2d` with the backward pass of `_frames2d_vjp_bwd` (temporal stride 1; other
  temporal strides fall back to autodiff of `conv3d_frames2d`)."""
  strides = tuple(int(s) for s in strides)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  if strides[0] != 1:
    return conv3d_frames2d(x, kernel, strides, padding)
  return _frames2d_vjp(x, kernel, strides, padding)


def is_pointwise(kernel_spatial, strides, padding) -> bool:
  """A 1x1(x1) kernel at stride 1 without padding: a matmul over channels."""
  return (all(k == 1 for k in kernel_spatial) and all(s == 1 for s in strides)
          and not any(lo or hi for lo, hi in padding))


def pointwise(x, kernel):
  """A 1x1(x1), stride-1, unpadded convolution as the matmul over channels it is: (..., C) with
  kernel (1, ..., 1, C, O) -> (..., O).

  Why not `lax.conv_general_dilated`: XLA's SPMD partitioner (jax 0.10.2, CPU) computes wrong
  values for a fold-vmapped 1x1 stride-1 convolution whose fold axis is sharded over devices (a
  multi-device sweep): off by tens, or a feature_group_count error; 3x3 and strided 1x1 kernels
  are right. A dot is partitioned correctly (tests/test_conv3d.py).
  """
  return jnp.einsum("...c,co->...o", x, kernel.reshape(kernel.shape[-2:]))


def conv3d(x, kernel, strides, padding, lowering: str = "xla"):
  """(N, T, H, W, C) * (kT, kH, kW, C, O) with the named lowering ('auto' picks per shape);
  pointwise kernels are always a matmul (`pointwise`)."""
  if lowering not in LOWERINGS:
    raise ValueError(f"Unknown conv lowering {lowering!r}; known: {LOWERINGS}")
  if is_pointwise(kernel.shape[:3], strides, padding):
    return pointwise(x, kernel)
  if lowering == "auto":
    lowering = auto_lowering(kernel.shape[:3], strides, x.shape,
                             itemsize=jnp.dtype(x.dtype).itemsize)
  if lowering == "xla":
    return lax.conv_general_dilated(x, kernel, tuple(strides), tuple(tuple(p) for p in padding),
                                    dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
  if lowering == "frames2d":
    return conv3d_frames2d(x, kernel, strides, padding)
  if lowering == "frames2d_vjp":
    return conv3d_frames2d_vjp(x, kernel, strides, padding)
  return conv3d_im2col(x, kernel, strides, padding, per_temporal_tap=lowering == "im2col_t")


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
    kernel = self.param("kernel", self.kernel_init,
                        tuple(self.kernel_size) + (x.shape[-1], self.features), jnp.float32)
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    y = conv3d(x, kernel, self.strides, self.padding, self.lowering)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), jnp.float32).astype(self.dtype)
    return y
