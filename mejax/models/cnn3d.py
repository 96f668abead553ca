"""The 3D CNNs of Talluri et al. 2022: Model-A, Split-Model, Model-B, Model-C (MODELS.md §4).

Channels last: clips and feature maps are (N, T, H, W, C); the paper's depth D is T.

Model-A (`ModelA`), paper Table 2 for CASME II (D = 36; 26 for SMIC, 30 for the combined set):

    layer      what                                              output (T, H, W, C)
    input      clip                                              (36, 128, 128, C)
    conv1      Conv3D 16, 3x3x3, SAME, He-normal                 (36, 128, 128, 16)
    bn1        BatchNorm, then ReLU
    pool1      MaxPool3D 3x3x3, stride 3, VALID                  (12, 42, 42, 16)
    dropout1   Dropout 0.4
    conv2, bn2, pool2, dropout2 (the same block)                 (4, 14, 14, 16)
    flatten                                                      12,544 (sown: features)
    dense1     Dense 128, ReLU
    dropout3   Dropout 0.4
    dense2     Dense num_classes                                 3 logits

1,613,587 parameters for a one-channel (grey) input at D = 36 (plus 64 BatchNorm statistics).

Split-Model (`SplitModel`): Model-A with a third block (conv3, bn3, pool3, dropout3; then dense1,
dropout4, dense2), the variant the paper used for its train-test split. With VALID pooling
throughout, D = 26 (SMIC) would pool 26 -> 8 -> 2 -> 0 frames; the third pool is therefore 'SAME'
by default (`third_pool_padding`), which keeps the trailing partial window: 2 -> 1 frame, and
14 -> 5 pixels (D = 36: (2, 5, 5, 16) = 800 features; D = 26: (1, 5, 5, 16) = 400).

Model-B (`ModelB`) is MicroExpSTCNN (`mejax.models.stcnn.STCNN`, 64 x 64 input) unchanged: the
paper reimplements it as published.

Model-C (`ModelC`), Talluri's reimplementation of Jiao et al. 2021, whose paper omits the sizes;
Talluri et al. assumed them and so do we: input 128 x 128, one Conv3D of 32 filters 3x3x3 (SAME,
He-normal) with BatchNorm and ReLU, two max-pools 3x3x3 (stride 3, VALID), dropout 0.5, Dense 128
(ReLU), dropout 0.5, Dense num_classes:

    conv1 -> bn1 -> ReLU -> pool1 -> pool2 -> dropout1 -> flatten -> dense1 -> dropout2 -> dense2
    (36, 128, 128, 32) -> (12, 42, 42, 32) -> (4, 14, 14, 32) -> 25,088 features  (D = 36)

Choices where the papers are ambiguous (each one an attribute or written here):

- Model-C's number of convolutions. Talluri et al. write of "a convolution with 32 filters" and of
  "two max-pooling blocks", and say Model-A "is deeper and consists of more convolutional layers"
  than Models B and C: so one convolution followed by both pools (`num_convs=1`, default).
  `num_convs=2` gives Model-A's layout instead ([conv, BN, ReLU, pool, dropout] x 2) with 32
  filters and dropout 0.5. Padding, initialiser and layer order are Model-A's (the paper says its
  assumptions started from Model-A).
- Order within a block: conv -> BatchNorm -> ReLU (the paper passes "the output from each
  convolution ... to the batch normalization" and uses ReLU "across all feasible layers").
- The convolutions keep their bias (Keras' default; BatchNorm makes it redundant, but the
  parameter count stays Keras'). Initialisers: conv kernels He-normal (Keras `HeNormal`: truncated
  normal, std sqrt(2 / fan_in)) as the paper says; zero biases; Dense layers Keras' default
  glorot_uniform (the paper names He-normal for the convolutions only).
- BatchNorm: momentum 0.9, epsilon 1e-5 (this project's convention) rather than Keras' defaults
  0.99 and 1e-3; statistics in `batch_stats`.
- The dropout after dense1 uses the blocks' rate (0.4 in Model-A, 0.5 in Model-C).
- Pooling is Keras' MaxPooling3D(pool_size=3): stride 3, VALID, trailing frames/pixels that do not
  fill a window are dropped; 'SAME' only for the Split-Model's third pool.
- The head returns logits (the paper's softmax is left to the loss); logits are float32.

Bad input sizes (a VALID pooling window larger than what is left, e.g. Model-A on 8 frames: 8 -> 2
-> pool2 of 3) fail at `init` with a ValueError naming the layer and the sizes.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mejax.models import conv3d, stcnn
from mejax.models.stcnn import Flatten, MaxPool3D, check_clip_shape, pool_output_sizes

# Keras' HeNormal: truncated normal with std sqrt(2 / fan_in).
he_normal_init = nn.initializers.he_normal()
keras_default_kernel_init = stcnn.keras_default_kernel_init

ModelB = stcnn.STCNN
"""Talluri et al.'s Model-B is MicroExpSTCNN as published (64 x 64 input, D frames)."""


def _same_padding(kernel_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
  # TensorFlow's SAME for stride 1: the odd pixel, if any, goes after.
  return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_size)


def _conv_bn_relu(module: nn.Module, x, train: bool, index: int):
  """conv{index} (SAME, He-normal, bias) -> bn{index} -> ReLU, in `module`'s scope."""
  x = conv3d.Conv3D(module.filters, module.kernel_size, padding=_same_padding(module.kernel_size),
                    use_bias=True, dtype=module.dtype, kernel_init=he_normal_init,
                    lowering=module.conv_lowering, name=f'conv{index}')(x)
  x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=module.dtype,
                   name=f'bn{index}')(x)
  return nn.relu(x)


def _head(module: nn.Module, x, train: bool, dropout_index: int):
  """flatten (sown as `features`) -> dense1 -> ReLU -> dropout{dropout_index} -> dense2 logits."""
  x = Flatten(name='flatten')(x)
  module.sow('intermediates', 'features', x)
  x = nn.Dense(module.dense_features, dtype=module.dtype, kernel_init=keras_default_kernel_init,
               name='dense1')(x)
  x = nn.Dropout(module.dropout_rate, name=f'dropout{dropout_index}')(
      nn.relu(x), deterministic=not train)
  x = nn.Dense(module.num_classes, dtype=module.dtype, kernel_init=keras_default_kernel_init,
               name='dense2')(x)
  return x.astype(jnp.float32)


class ModelA(nn.Module):
  """Talluri et al.'s Model-A: 2 blocks of [Conv3D 16 3x3x3 SAME -> BN -> ReLU -> MaxPool3D 3 ->
  Dropout 0.4] -> Dense 128 -> Dense num_classes.

  Attributes:
    num_classes: output classes.
    filters: filters of every convolution (16).
    kernel_size: kernel of every convolution (3, 3, 3), SAME padding.
    pool_window: window and stride of every max-pool (3).
    dropout_rate: every dropout (0.4).
    dense_features: dense1's width (128).
    dtype: computation dtype; parameters are float32, logits float32.
    conv_lowering: how the convolutions reach XLA (`conv3d.LOWERINGS`).
  Input (N, D, 128, 128, C), D = 36 (CASME II), 26 (SMIC) or 30 (combined).
  """
  num_classes: int = 3
  filters: int = 16
  kernel_size: tuple[int, int, int] = (3, 3, 3)
  pool_window: int = 3
  dropout_rate: float = 0.4
  dense_features: int = 128
  dtype: Any = jnp.float32
  conv_lowering: str = 'xla'

  def pool_paddings(self) -> tuple[str, ...]:
    """The padding of each block's pool; one entry per block."""
    return ('VALID', 'VALID')

  def feature_sizes(self, sizes: Sequence[int]) -> tuple[int, ...]:
    """(T, H, W) entering flatten for an input of (T, H, W) `sizes`; ValueError naming the layer
    on bad sizes (SAME convolutions keep the size, so only the pools can fail)."""
    for index, padding in enumerate(self.pool_paddings(), start=1):
      sizes = pool_output_sizes(f'pool{index}', sizes, self.pool_window, padding)
    return sizes

  @nn.compact
  def __call__(self, x, train: bool):
    self.feature_sizes(check_clip_shape(type(self).__name__, x.shape))
    x = jnp.asarray(x, self.dtype)
    paddings = self.pool_paddings()
    for index, padding in enumerate(paddings, start=1):
      x = _conv_bn_relu(self, x, train, index)
      x = MaxPool3D(self.pool_window, padding, name=f'pool{index}')(x)
      x = nn.Dropout(self.dropout_rate, name=f'dropout{index}')(x, deterministic=not train)
    return _head(self, x, train, dropout_index=len(paddings) + 1)


class SplitModel(ModelA):
  """Model-A with a third block (the paper's Split-Model for its train-test split).

  Attributes (besides Model-A's):
    third_pool_padding: 'SAME' (default) keeps a trailing partial window so that D = 26 pools
      26 -> 8 -> 2 -> 1 instead of 0; 'VALID' is Keras' default and fails for D < 27.
  """
  third_pool_padding: str = 'SAME'

  def pool_paddings(self) -> tuple[str, ...]:
    return ('VALID', 'VALID', self.third_pool_padding)


class ModelC(nn.Module):
  """Talluri et al.'s Model-C (after Jiao et al. 2021): Conv3D 32 3x3x3 + BN -> two MaxPool3D 3
  -> Dropout 0.5 -> Dense 128 -> Dense num_classes (the sizes are the paper's assumptions).

  Attributes:
    num_classes: output classes.
    num_convs: 1 (default): conv1 -> bn1 -> ReLU -> pool1 -> pool2 -> dropout1; 2: Model-A's
      layout, [conv, bn, ReLU, pool, dropout] twice (see the module docstring).
    filters: filters of every convolution (32).
    kernel_size: kernel of every convolution (3, 3, 3), SAME padding.
    pool_window: window and stride of both max-pools (3), VALID.
    dropout_rate: every dropout (0.5).
    dense_features: dense1's width (128).
    dtype: computation dtype; parameters are float32, logits float32.
    conv_lowering: how the convolutions reach XLA (`conv3d.LOWERINGS`).
  Input (N, D, 128, 128, C).
  """
  num_classes: int = 3
  num_convs: int = 1
  filters: int = 32
  kernel_size: tuple[int, int, int] = (3, 3, 3)
  pool_window: int = 3
  dropout_rate: float = 0.5
  dense_features: int = 128
  dtype: Any = jnp.float32
  conv_lowering: str = 'xla'

  def feature_sizes(self, sizes: Sequence[int]) -> tuple[int, ...]:
    """(T, H, W) entering flatten; ValueError naming the pool that would leave nothing."""
    for index in (1, 2):
      sizes = pool_output_sizes(f'pool{index}', sizes, self.pool_window, 'VALID')
    return sizes

  @nn.compact
  def __call__(self, x, train: bool):
    if self.num_convs not in (1, 2):
      raise ValueError(f'ModelC: num_convs must be 1 or 2, got {self.num_convs}')
    self.feature_sizes(check_clip_shape('ModelC', x.shape))
    x = jnp.asarray(x, self.dtype)
    dropout = lambda index: nn.Dropout(self.dropout_rate, name=f'dropout{index}')
    if self.num_convs == 1:
      x = _conv_bn_relu(self, x, train, 1)
      x = MaxPool3D(self.pool_window, 'VALID', name='pool1')(x)
      x = MaxPool3D(self.pool_window, 'VALID', name='pool2')(x)
      x = dropout(1)(x, deterministic=not train)
    else:
      for index in (1, 2):
        x = _conv_bn_relu(self, x, train, index)
        x = MaxPool3D(self.pool_window, 'VALID', name=f'pool{index}')(x)
        x = dropout(index)(x, deterministic=not train)
    return _head(self, x, train, dropout_index=self.num_convs + 1)
