"""MicroExpSTCNN and MicroExpFuseNet: the 3D CNNs of Reddy et al. 2019 (MODELS.md §3).

Channels last: clips and feature maps are (N, T, H, W, C). The paper (Keras, channels first)
writes its input as 64 x 64 x D (rows, columns, frames) and its kernel as 3 x 3 x 15; here the
input is (N, D, 64, 64, 1) and the kernel (15, 3, 3): 15 frames by 3 x 3 pixels.

MicroExpSTCNN (`STCNN`), the whole face in grey; paper Table I for D = 96 (CAS(ME)^2):

    layer      what                                         output (T, H, W, C)
    input      grey clip                                    (96, 64, 64, 1)
    conv1      Conv3D 32, kernel (15, 3, 3), VALID, ReLU    (82, 62, 62, 32)
    pool1      MaxPool3D 3x3x3, stride 3, VALID             (27, 20, 20, 32)
    dropout1   Dropout 0.5
    flatten                                                 345,600  (sown: intermediates/features)
    dense1     Dense 128, ReLU                              128
    dropout2   Dropout 0.5
    dense2     Dense num_classes                            3 logits

44,241,667 parameters for D = 96; 1,643,267 for D = 18 (SMIC: 12,800 features).

MicroExpFuseNet (`FuseNet`): two such branches, `eyes` and `nose_mouth`, each on a 32 x 32 grey
region (channels 0 and 1 of the input), each Conv3D 32 (15, 3, 3) ReLU -> MaxPool 3 -> Dropout 0.5
-> Flatten: (82, 30, 30, 32) -> (27, 10, 10, 32) -> 86,400 features per branch for D = 96 (paper
Tables II and III). Then
- fusion='intermediate' (Table II): concat (172,800 = 2 x 86,400; the table prints 86,400) ->
  dense1 1024 -> dropout -> dense2 128 -> dropout -> dense3 num_classes. 177,088,515 parameters
  for D = 96.
- fusion='late' (Table III): per branch dense1 1024 -> dropout -> dense2 128 -> dropout; concat
  (256) -> dense3 num_classes. 177,221,123 parameters for D = 96.

Choices where the paper is ambiguous (each one is an attribute or written here):

- Initialisers follow the authors' public Keras code: conv kernels glorot_uniform, zero biases
  (Keras defaults); STCNN's two Dense layers `init='normal'`, i.e. N(0, 0.05) (Keras 2's
  RandomNormal default), with zero bias; FuseNet's Dense layers Keras defaults (glorot_uniform).
- Table I lists a Dropout after the last Dense layer; the public code has none, and dropping
  logits makes little sense: no dropout after the classifier here.
- FuseNet's 1024/128 Dense layers: the paper names no activation for them and the public code
  leaves them linear. `dense_activation='relu'` (default, as STCNN's Dense 128) or 'linear' (the
  code's behaviour).
- Pooling: Keras MaxPooling3D(pool_size=3), so stride 3 and VALID (trailing frames/pixels that do
  not fill a window are dropped: 82 -> 27).
- The head returns logits; the paper's softmax is left to the loss. Logits are float32.
- Flatten order is (T, H, W, C) row-major, not Keras' channels-first order; only matters when
  porting the authors' Keras weights (permute dense1's rows).
- Regions: the input carries the regions stacked on the channel axis (channel 0 = eyes, channel 1
  = nose-mouth, as the authors' code crops them); how they are cut is the data pipeline's choice.

Bad input sizes (a temporal kernel longer than the clip, a pooling window larger than what is left)
fail at `init` with a ValueError naming the layer and the sizes (`conv_output_sizes`,
`pool_output_sizes`, which `mejax.models.cnn3d` shares).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mejax.models import conv3d

AXIS_NAMES = ('frames', 'rows', 'columns')
KERNEL_AXIS_NAMES = ('temporal', 'vertical', 'horizontal')

# Keras 2's `init='normal'` (RandomNormal(mean=0, stddev=0.05)), used by the authors' STCNN code.
keras_normal_init = nn.initializers.normal(stddev=0.05)
# Keras' defaults for Conv3D and Dense kernels.
keras_default_kernel_init = nn.initializers.glorot_uniform()

FUSIONS = ('intermediate', 'late')
DENSE_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {'relu': nn.relu, 'linear': lambda x: x}


# ------------------------------------------------------------------------------- size checks


def check_clip_shape(model_name: str, shape: Sequence[int]) -> tuple[int, int, int]:
  """(T, H, W) of an (N, T, H, W, C) clip shape; ValueError if the rank is not 5."""
  if len(shape) != 5:
    raise ValueError(f'{model_name} expects (N, T, H, W, C) clips, got shape {tuple(shape)}')
  return tuple(shape[1:4])


def conv_output_sizes(layer: str, sizes: Sequence[int], kernel_size: Sequence[int],
                      padding: str) -> tuple[int, ...]:
  """(T, H, W) after a stride-1 convolution with 'VALID' or 'SAME' padding.

  ValueError naming `layer` when a VALID kernel is larger than its input."""
  if padding == 'SAME':
    return tuple(sizes)
  if padding != 'VALID':
    raise ValueError(f"{layer}: padding must be 'VALID' or 'SAME', got {padding!r}")
  for size, k, kernel_axis, axis in zip(sizes, kernel_size, KERNEL_AXIS_NAMES, AXIS_NAMES):
    if k > size:
      raise ValueError(f'{layer}: {kernel_axis} kernel {k} larger than the {size} input {axis}')
  return tuple(size - k + 1 for size, k in zip(sizes, kernel_size))


def pool_output_sizes(layer: str, sizes: Sequence[int], window: int,
                      padding: str) -> tuple[int, ...]:
  """(T, H, W) after a max-pool of `window` with stride `window` ('VALID' or 'SAME').

  ValueError naming `layer` when a VALID window is larger than its input (the output would be
  empty)."""
  if padding == 'SAME':
    return tuple(math.ceil(size / window) for size in sizes)
  if padding != 'VALID':
    raise ValueError(f"{layer}: padding must be 'VALID' or 'SAME', got {padding!r}")
  for size, axis in zip(sizes, AXIS_NAMES):
    if window > size:
      raise ValueError(f'{layer}: pooling window {window} larger than the {size} input {axis} '
                       f'(VALID pooling would leave 0 {axis})')
  return tuple((size - window) // window + 1 for size in sizes)


# ---------------------------------------------------------------------------------- layers


class MaxPool3D(nn.Module):
  """Max-pool over (T, H, W) with window = stride = `window`; a module so that it has a name
  (and a row of its own in `Module.tabulate`)."""
  window: int = 3
  padding: str = 'VALID'

  def __call__(self, x):
    return nn.max_pool(x, (self.window,) * 3, strides=(self.window,) * 3, padding=self.padding)


class Flatten(nn.Module):
  """(N, ...) -> (N, features), row-major; a module so that it has a name."""

  def __call__(self, x):
    return x.reshape((x.shape[0], -1))


def _valid(kernel_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
  return ((0, 0),) * len(kernel_size)


def stcnn_output_sizes(sizes: Sequence[int], kernel_size: Sequence[int], pool_window: int,
                       prefix: str = '') -> tuple[int, ...]:
  """(T, H, W) after conv1 (VALID) and pool1 (VALID) for an input of `sizes`; ValueError naming
  the layer (`prefix` + 'conv1' or 'pool1') on bad sizes."""
  sizes = conv_output_sizes(f'{prefix}conv1', sizes, kernel_size, 'VALID')
  return pool_output_sizes(f'{prefix}pool1', sizes, pool_window, 'VALID')


def _conv_pool_flatten(module: nn.Module, x, train: bool):
  """conv1 (VALID, ReLU) -> pool1 -> dropout1 -> flatten, created in `module`'s scope (its
  `filters`, `kernel_size`, `pool_window`, `dropout_rate`, `dtype`, `conv_lowering`); sows the
  flattened vector as `features`."""
  x = conv3d.Conv3D(module.filters, module.kernel_size, padding=_valid(module.kernel_size),
                    use_bias=True, dtype=module.dtype, kernel_init=keras_default_kernel_init,
                    lowering=module.conv_lowering, name='conv1')(x)
  x = nn.relu(x)
  x = MaxPool3D(module.pool_window, 'VALID', name='pool1')(x)
  x = nn.Dropout(module.dropout_rate, name='dropout1')(x, deterministic=not train)
  x = Flatten(name='flatten')(x)
  module.sow('intermediates', 'features', x)
  return x


# ----------------------------------------------------------------------------------- models


class STCNN(nn.Module):
  """MicroExpSTCNN: one Conv3D (15, 3, 3) -> MaxPool 3 -> Dense 128 -> Dense num_classes.

  Attributes:
    num_classes: output classes.
    filters: conv1's filters (32).
    kernel_size: conv1's kernel (T, H, W); the paper's 3 x 3 x 15 is (15, 3, 3).
    pool_window: pool1's window and stride (3).
    dropout_rate: both dropouts (0.5).
    dense_features: dense1's width (128).
    dtype: computation dtype; parameters are float32, logits float32.
    conv_lowering: how conv1 reaches XLA (`conv3d.LOWERINGS`).
  Input (N, D, H, W, C): the paper's is (N, D, 64, 64, 1) with D = 96 or 18.
  Layers (named as Table I): conv1, pool1, dropout1, flatten, dense1, dropout2, dense2.
  """
  num_classes: int = 3
  filters: int = 32
  kernel_size: tuple[int, int, int] = (15, 3, 3)
  pool_window: int = 3
  dropout_rate: float = 0.5
  dense_features: int = 128
  dtype: Any = jnp.float32
  conv_lowering: str = 'xla'

  @nn.compact
  def __call__(self, x, train: bool):
    stcnn_output_sizes(check_clip_shape('STCNN', x.shape), self.kernel_size, self.pool_window)
    x = _conv_pool_flatten(self, jnp.asarray(x, self.dtype), train)
    x = nn.Dense(self.dense_features, dtype=self.dtype, kernel_init=keras_normal_init,
                 name='dense1')(x)
    x = nn.Dropout(self.dropout_rate, name='dropout2')(nn.relu(x), deterministic=not train)
    x = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=keras_normal_init,
                 name='dense2')(x)
    return x.astype(jnp.float32)


def _hidden_dense(x, train: bool, features: Sequence[int], activation: str, dropout_rate: float,
                  dtype, first_index: int):
  """FuseNet's Dense 1024 -> act -> dropout -> Dense 128 -> act -> dropout (Keras default init),
  created in the calling module's scope as dense1, dense2 with dropouts numbered from
  `first_index`."""
  for offset, width in enumerate(features):
    x = nn.Dense(width, dtype=dtype, kernel_init=keras_default_kernel_init,
                 name=f'dense{offset + 1}')(x)
    x = DENSE_ACTIVATIONS[activation](x)
    x = nn.Dropout(dropout_rate, name=f'dropout{first_index + offset}')(
        x, deterministic=not train)
  return x


class FuseNetBranch(nn.Module):
  """One FuseNet region: conv1 -> pool1 -> dropout1 -> flatten (sown as `features`), then, for
  late fusion (`hidden_features` not empty), dense1 -> dropout2 -> dense2 -> dropout3."""
  filters: int = 32
  kernel_size: tuple[int, int, int] = (15, 3, 3)
  pool_window: int = 3
  dropout_rate: float = 0.5
  hidden_features: tuple[int, ...] = ()
  hidden_activation: str = 'relu'
  dtype: Any = jnp.float32
  conv_lowering: str = 'xla'

  @nn.compact
  def __call__(self, x, train: bool):
    x = _conv_pool_flatten(self, x, train)
    return _hidden_dense(x, train, self.hidden_features, self.hidden_activation,
                         self.dropout_rate, self.dtype, first_index=2)


class FuseNet(nn.Module):
  """MicroExpFuseNet: eyes and nose-mouth STCNN branches fused before or after their Dense layers.

  Attributes:
    num_classes: output classes.
    fusion: 'intermediate' (concat the flattened features, then Dense 1024 -> Dense 128) or
      'late' (Dense 1024 -> Dense 128 per branch, concat the two 128-vectors).
    dense_activation: activation of the 1024/128 Dense layers, 'relu' (default) or 'linear'
      (the authors' public code).
    filters, kernel_size, pool_window, dropout_rate: as in `STCNN`, shared by both branches.
    dense_features: widths of the two hidden Dense layers ((1024, 128)).
    dtype: computation dtype; parameters are float32, logits float32.
    conv_lowering: how the convolutions reach XLA (`conv3d.LOWERINGS`).
  Input (N, D, 32, 32, 2): channel 0 = eyes region, channel 1 = nose-mouth region.
  Parameters: `eyes/conv1`, `nose_mouth/conv1`; intermediate: `dense1`, `dense2`, `dense3`;
  late: `eyes/dense1`, `eyes/dense2` (and the same in `nose_mouth`), `dense3`.
  Intermediates: `eyes/features`, `nose_mouth/features` (flattened, 86,400 each for D = 96) and
  `fused` (the concatenation: 172,800 for intermediate fusion, 256 for late fusion).
  """
  num_classes: int = 3
  fusion: str = 'intermediate'
  dense_activation: str = 'relu'
  filters: int = 32
  kernel_size: tuple[int, int, int] = (15, 3, 3)
  pool_window: int = 3
  dropout_rate: float = 0.5
  dense_features: tuple[int, ...] = (1024, 128)
  dtype: Any = jnp.float32
  conv_lowering: str = 'xla'

  REGIONS = ('eyes', 'nose_mouth')

  @nn.compact
  def __call__(self, x, train: bool):
    if self.fusion not in FUSIONS:
      raise ValueError(f'FuseNet: fusion must be one of {FUSIONS}, got {self.fusion!r}')
    if self.dense_activation not in DENSE_ACTIVATIONS:
      raise ValueError(f'FuseNet: dense_activation must be one of {tuple(DENSE_ACTIVATIONS)}, '
                       f'got {self.dense_activation!r}')
    sizes = check_clip_shape('FuseNet', x.shape)
    if x.shape[-1] != len(self.REGIONS):
      raise ValueError(f'FuseNet expects {len(self.REGIONS)} grey regions on the channel axis '
                       f'(0 = eyes, 1 = nose-mouth), got {x.shape[-1]} channels')
    for region in self.REGIONS:
      stcnn_output_sizes(sizes, self.kernel_size, self.pool_window, prefix=f'{region}/')
    x = jnp.asarray(x, self.dtype)
    late = self.fusion == 'late'
    branch_outputs = [
        FuseNetBranch(self.filters, self.kernel_size, self.pool_window, self.dropout_rate,
                      hidden_features=tuple(self.dense_features) if late else (),
                      hidden_activation=self.dense_activation, dtype=self.dtype,
                      conv_lowering=self.conv_lowering, name=region)(x[..., i:i + 1], train)
        for i, region in enumerate(self.REGIONS)]
    h = jnp.concatenate(branch_outputs, axis=-1)
    self.sow('intermediates', 'fused', h)
    if not late:
      h = _hidden_dense(h, train, self.dense_features, self.dense_activation, self.dropout_rate,
                        self.dtype, first_index=1)
    h = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=keras_default_kernel_init,
                 name=f'dense{len(self.dense_features) + 1}')(h)
    return h.astype(jnp.float32)
