"""STRCN: the spatiotemporal recurrent convolutional networks of Xia et al. 2019 (MODELS.md §5).

Both variants are one 2D network over one "image" per sample (paper Table I; M = `features`):

    layer   STRCN-A (appearance)            STRCN-G (geometric)
    input   P x T x C (pixels x frames)     H x W x 2 (optical flow u, v)
    Conv1   5x5, pad 0, stride 1, M maps -> BN -> ReLU
    Pool1   max 4x1, stride 4x1             max 4x4, stride 4x4
    RCL2    1x1 feed-forward + 3 recurrent 3x3 (pad 1) convs, M maps
    Pool2   max 4x1, stride 4x1             max 4x4, stride 4x4
    RCL3
    Pool3   max 4x4, stride 4x4             max 4x4, stride 4x4
    RCL4
    Pool4   max 2x2, stride 2x2             max 2x2, stride 2x2
    RCL5
    Pool5   global average -> M features
    Output  Dense M -> C classes (logits)

Inputs in the project's (N, T, H, W, C) interface, always with T == 1 (squeezed here):

- STRCN-A receives the appearance matrix of §III-C-1 as a 2D image (N, 1, P, T, C): row p is the
  p-th selected pixel (the top p = 30 % of the training fold's difference heat map, eq. 4; chosen
  and flattened host-side, fold by fold), column t is frame t, C the colour channels. The paper's
  sizes: 64 x 48 faces, 30 % of 3,072 pixels -> P = 921 or 922, T = 30 frames, C = 3. Table I's
  4x1 windows therefore pool over pixels only and keep the frame axis until Pool3; they need
  P >= 132 and T >= 12. The rows should follow the mask in raster (row-major) order, as
  "vectorizing one channel of an image into a column" does, so that neighbouring rows are mostly
  neighbouring pixels of a face row.
- STRCN-G receives the onset-to-apex optical flow (N, 1, H, W, 2) (the paper: 300 x 245 frames;
  STRCN-G is called "STRCN-B" in §IV-A). Table I's 4x4 windows need H, W >= 132 (see
  `layer_sizes`); for smaller flow fields pass smaller `pool_windows`.

Choices where the paper is ambiguous (each one is named so that it can be changed):

- RCL unrolling (eqs. 6-7, after Liang & Hu 2015): the feed-forward input u is the same at every
  step, so w_f * u + b is computed once; v(0) = ReLU(BN_0(w_f * u + b)) and, for
  n = 1..`iterations`, v(n) = ReLU(BN_n(w_f * u + w_r * v(n-1) + b)) with ONE recurrent kernel
  w_r shared by the steps. The paper's "initial state v(0) = 0" is the same thing counted from
  one step earlier: the first state sees only the feed-forward term. Table I's "3 recurrent" =
  `iterations` = 3, so an RCL is four convolutional layers deep and holds one 1x1 and one 3x3
  kernel.
- One bias per feature map (eq. 6's b_k): on the feed-forward 1x1 conv; the recurrent conv has none.
- BatchNorm per unrolled step (`share_batch_norm=False`): §IV-A puts BN + ReLU after "each
  convolutional layer (feed-forward and recurrent)" and §III-D unfolds an RCL into several
  convolutional layers, so each unrolled layer gets its own BN (scale, offset and statistics);
  the distribution of z(n) changes with n, which one shared set of statistics would average away.
  `share_batch_norm=True` uses one BN for all steps instead.
- The unroll is a Python loop, not `nn.scan`: 3 steps are few, each step has its own BN (scan would
  need per-step variables stacked along an axis), and XLA sees the same graph either way.
- Classifier: eq. (8) p = softmax(W^T v) with v the globally average-pooled feature vector, so a
  Dense M -> C after the pool (not a 1x1 conv to C before it). It has a bias, as MatConvNet's
  fully connected (convolution) layers do; eq. (8) writes none. Logits are returned (float32);
  softmax and the paper's balanced loss are the loss's business.
- Pooling has no padding and floors (MatConvNet's `vl_nnpool`, 'VALID' here): Pool3 of STRCN-A on
  a 229 x 26 map keeps 14 x 6 (the 2 trailing frames are dropped).
- Conv1 has a bias and BN + ReLU after it, like every convolutional layer (§IV-A).
- Initialisation is MatConvNet's `dagnn.Conv` default (the paper's framework): kernels
  N(0, 2 / fan_in) ("Xavier improved" = He-normal, untruncated), biases zero; the classifier too.
  BN scale 1, offset 0; momentum 0.9, epsilon 1e-5 (project convention).

Parameters (M = 64, Table I): STRCN-A (C = 3) 171,331 for 3 classes / 171,396 for 4; STRCN-G
(C = 2) 169,731 / 169,796. Each RCL is 41,536 of them (1x1: 4,160, shared 3x3: 36,864, four BNs:
512). The paper gives no count.

Not modelled here: the recurrent-layer ablation of Fig. 8 (fewer RCLs), the spatial/temporal
preprocessing (crop, EVM, pixel selection, optical flow) and the balanced loss (eq. 10).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from mejax.models import conv3d

# Table I pooling windows (stride = window) for Pool1..Pool4, as (rows, columns) = (H, W).
APPEARANCE_POOL_WINDOWS = ((4, 1), (4, 1), (4, 4), (2, 2))
GEOMETRIC_POOL_WINDOWS = ((4, 4), (4, 4), (4, 4), (2, 2))
VARIANT_POOL_WINDOWS = {'appearance': APPEARANCE_POOL_WINDOWS, 'geometric': GEOMETRIC_POOL_WINDOWS}

CONV1_KERNEL = (5, 5)

# MatConvNet dagnn.Conv.initParams: randn * sqrt(2 / (kh * kw * in)), zero bias. (JAX's
# 'normal' is untruncated, like randn.)
matconvnet_kernel_init = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')


def layer_sizes(height: int, width: int,
                pool_windows: Sequence[Sequence[int]]) -> list[tuple[str, tuple[int, int]]]:
  """(layer name, (H, W)) after conv1 and each pool, for an H x W input; sizes may be <= 0.

  RCLs keep the size (3x3 convs with padding 1), so these are also the RCL feature-map sizes."""
  sizes = [('conv1', (height - CONV1_KERNEL[0] + 1, width - CONV1_KERNEL[1] + 1))]
  for index, (window_h, window_w) in enumerate(pool_windows):
    h, w = sizes[-1][1]
    sizes.append((f'pool{index + 1}', (h // window_h, w // window_w)))
  return sizes


class PointwiseConv(nn.Module):
  """`nn.Conv(features, (1, 1), use_bias=True)` (the same `kernel` (1, 1, in, out) and `bias`,
  initialised alike) computed as a matmul over channels (`conv3d.pointwise`: XLA mis-partitions
  fold-vmapped 1x1 convolutions in multi-device sweeps)."""
  features: int
  dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', self.kernel_init, (1, 1, x.shape[-1], self.features),
                        jnp.float32)
    bias = self.param('bias', self.bias_init, (self.features,), jnp.float32)
    x = x.astype(self.dtype)
    return conv3d.pointwise(x, kernel.astype(self.dtype)) + bias.astype(self.dtype)


class RCL(nn.Module):
  """Recurrent convolutional layer: (N, H, W, C) -> (N, H, W, features), same H, W.

  Parameters: `feed_forward` (1x1 conv, with the bias b), `recurrent` (3x3 conv, no bias, shared
  by all steps), and BatchNorms `bn0`..`bn{iterations}` (or one `bn` with `share_batch_norm`).
  """
  features: int
  iterations: int = 3
  share_batch_norm: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, u, train: bool):
    if self.iterations < 0:
      raise ValueError(f'RCL: iterations must be >= 0, got {self.iterations}')
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             epsilon=1e-5, dtype=self.dtype)
    shared_norm = norm(name='bn') if self.share_batch_norm else None

    def step_norm(step: int):
      return shared_norm if shared_norm is not None else norm(name=f'bn{step}')

    # w_f * u + b does not change across steps: computed once.
    feed_forward = PointwiseConv(self.features, dtype=self.dtype,
                                 kernel_init=matconvnet_kernel_init, name='feed_forward')(u)
    recurrent = nn.Conv(self.features, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                        dtype=self.dtype, kernel_init=matconvnet_kernel_init, name='recurrent')
    state = nn.relu(step_norm(0)(feed_forward))
    for step in range(1, self.iterations + 1):
      state = nn.relu(step_norm(step)(feed_forward + recurrent(state)))
    return state


class STRCN(nn.Module):
  """STRCN-A / STRCN-G of Xia et al. (Table I): (N, 1, H, W, C) -> logits (N, num_classes).

  Attributes:
    num_classes: output classes (the paper: 3 for SMIC, 4 for CASME II and SAMM).
    features: M, the feature maps of every convolutional layer (grid-searched in the paper).
    variant: 'appearance' (STRCN-A, input P pixels x T frames x C) or 'geometric' (STRCN-G,
      input H x W x 2 optical flow); selects the default pooling windows.
    pool_windows: Pool1..Pool4 windows (= strides) as (rows, columns); None takes the variant's
      Table I windows. Its length sets the number of RCLs (one after each pool).
    iterations: recurrent steps per RCL (Table I: 3).
    share_batch_norm: one BatchNorm for all steps of an RCL instead of one per step.
    dtype: computation dtype; parameters are float32, logits float32.
  Parameter tree: `conv1`, `bn1`, `rcl2`..`rcl5`, `classifier`.
  """
  num_classes: int = 3
  features: int = 64
  variant: str = 'appearance'
  pool_windows: Sequence[Sequence[int]] | None = None
  iterations: int = 3
  share_batch_norm: bool = False
  dtype: Any = jnp.float32

  def windows(self) -> tuple[tuple[int, int], ...]:
    """The pooling windows used: `pool_windows`, or the variant's Table I windows."""
    if self.variant not in VARIANT_POOL_WINDOWS:
      raise ValueError(f'STRCN: unknown variant {self.variant!r}; '
                       f'known: {sorted(VARIANT_POOL_WINDOWS)}')
    windows = self.pool_windows
    if windows is None:
      windows = VARIANT_POOL_WINDOWS[self.variant]
    return tuple((int(h), int(w)) for h, w in windows)

  def _check_input(self, shape) -> None:
    layout = ('(N, 1, P pixels, T frames, C)' if self.variant == 'appearance'
              else '(N, 1, H, W, 2 flow channels)')
    if len(shape) != 5 or shape[1] != 1:
      raise ValueError(f'STRCN-{self.variant}: expects one 2D input per sample {layout}, '
                       f'got shape {tuple(shape)}')
    windows = self.windows()
    if any(h < 1 or w < 1 for h, w in windows):
      raise ValueError(f'STRCN-{self.variant}: pooling windows must be positive, got {windows}')
    height, width = shape[2], shape[3]
    previous = (height, width)
    for (name, size), window in zip(layer_sizes(height, width, windows),
                                    (CONV1_KERNEL,) + windows):
      if size[0] < 1 or size[1] < 1:
        kind = 'kernel' if name == 'conv1' else 'window'
        raise ValueError(
            f'STRCN-{self.variant} {name}: {kind} {window[0]}x{window[1]} larger than its '
            f'{previous[0]}x{previous[1]} input (network input {height}x{width} laid out as '
            f'{layout}; see strcn.layer_sizes)')
      previous = size

  @nn.compact
  def __call__(self, x, train: bool):
    self._check_input(x.shape)
    x = x[:, 0].astype(self.dtype)
    x = nn.Conv(self.features, CONV1_KERNEL, padding='VALID', use_bias=True, dtype=self.dtype,
                kernel_init=matconvnet_kernel_init, bias_init=nn.initializers.zeros,
                name='conv1')(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                     dtype=self.dtype, name='bn1')(x)
    x = nn.relu(x)
    for index, window in enumerate(self.windows()):
      x = nn.max_pool(x, window, strides=window, padding='VALID')
      x = RCL(self.features, iterations=self.iterations, share_batch_norm=self.share_batch_norm,
              dtype=self.dtype, name=f'rcl{index + 2}')(x, train=train)
    x = jnp.mean(x, axis=(1, 2))  # Pool5: global average
    x = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=matconvnet_kernel_init,
                 bias_init=nn.initializers.zeros, name='classifier')(x)
    return x.astype(jnp.float32)


STRCNAppearance = functools.partial(STRCN, variant='appearance')
STRCNGeometric = functools.partial(STRCN, variant='geometric')


# The per-fold pixel selection of STRCN-A: non-trainable, per fold, derived from that fold's
# training clips only (`fold_constants`), checkpointed in the `constants` collection.
PIXEL_INDEX = 'pixel_index'


class STRCNAppearanceFrames(nn.Module):
  """STRCN-A on frames: (N, T, H, W, C) clips -> the matrix of the selected pixels -> STRCN.

  The paper keeps the p = 30 % pixels of largest dataset-level change E(x, y) =
  sum_i sum_t |I_i(t) - I_i(0)| (training clips of the fold only) and lays each clip out as a
  (P pixels x T frames x C) image. The selected raster indices are the variable
  `constants/pixel_index` (P,), which the trainer sets per fold from that fold's training set
  (`fold_constants`); here they gather the pixels, in raster order, and STRCN-A classifies.

  Attributes: num_pixels P (round(p * H * W)), and the STRCN attributes.
  """
  num_pixels: int
  num_classes: int = 3
  features: int = 64
  pool_windows: Sequence[Sequence[int]] | None = None
  iterations: int = 3
  share_batch_norm: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    if x.ndim != 5:
      raise ValueError(f'STRCN-A: expects clips (N, T, H, W, C), got shape {tuple(x.shape)}')
    n, t, h, w, c = x.shape
    if not 0 < self.num_pixels <= h * w:
      raise ValueError(f'STRCN-A: num_pixels {self.num_pixels} outside 1..{h * w} (the {h}x{w} '
                       'frame)')
    index = self.variable('constants', PIXEL_INDEX,
                          lambda: jnp.arange(self.num_pixels, dtype=jnp.int32))
    pixels = x.reshape(n, t, h * w, c)[:, :, index.value]        # (N, T, P, C)
    matrix = jnp.transpose(pixels, (0, 2, 1, 3))[:, None]        # (N, 1, P, T, C)
    return STRCN(num_classes=self.num_classes, features=self.features, variant='appearance',
                 pool_windows=self.pool_windows, iterations=self.iterations,
                 share_batch_norm=self.share_batch_norm, dtype=self.dtype, name='strcn')(
                     matrix, train=train)


def select_pixels(view: np.ndarray, train_mask: np.ndarray, num_pixels: int) -> np.ndarray:
  """int32 [F, P]: per fold, the raster indices of the P pixels of largest change
  E(x, y) = sum over the fold's training clips and frames of |I(t) - I(0)| (channels summed),
  in increasing raster order. view: uint8 [N, T, H, W, C]; train_mask: bool [F, N]."""
  frames = view.astype(np.float32)
  change = np.abs(frames - frames[:, :1]).sum(axis=(1, 4))      # [N, H, W]
  per_clip = change.reshape(len(view), -1)
  heat = train_mask.astype(np.float32) @ per_clip               # [F, H * W]
  # Stable order: ties broken by raster index, so the selection is deterministic.
  order = np.argsort(-heat, axis=1, kind='stable')[:, :num_pixels]
  return np.sort(order, axis=1).astype(np.int32)


def fold_constants(view: np.ndarray, train_mask: np.ndarray, constants):
  """The `constants` of STRCN-A for F folds: each fold's pixel selection from its training clips
  (`select_pixels`); `constants` is the initial collection, stacked over the folds."""
  num_pixels = constants[PIXEL_INDEX].shape[-1]
  return dict(constants, **{PIXEL_INDEX: select_pixels(view, train_mask, num_pixels)})
