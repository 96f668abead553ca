"""R3D-18: the 3D ResNet-18 of Tran et al. 2018, as torchvision's `r3d_18` (MODELS.md §1).

Channels last: inputs and feature maps are (N, T, H, W, C).

- Stem: Conv3D 64, kernel (3, 7, 7), stride (1, 2, 2), padding (1, 3, 3), no bias -> BN -> ReLU.
  No max-pool (torchvision's `BasicStem`).
- 4 stages x 2 BasicBlocks, widths 64/128/256/512; the first block of stages 2-4 has stride
  (2, 2, 2), so time is halved too.
- BasicBlock: conv 3x3x3 (pad 1, no bias) -> BN -> ReLU -> conv 3x3x3 -> BN, plus the shortcut,
  ReLU after the add. The shortcut is a 1x1x1 conv (stride s, no bias) + BN when the stride is not 1
  or the width changes (layer2.0, layer3.0, layer4.0), as torchvision decides it.
- Padding is explicit and symmetric. 'SAME' would pad a stride-2 conv more at the end than at the
  start and the outputs would no longer match torchvision.
- BatchNorm: eps 1e-5, momentum 0.9 (Flax's convention; PyTorch's 0.1). Running statistics live in
  the `batch_stats` collection. `train=True` normalises with batch statistics and updates them
  (apply with `mutable=['batch_stats']`); `train=False` uses the running averages.
- Init as torchvision: conv variance_scaling(2.0, 'fan_out', 'normal') (kaiming_normal_, fan_out),
  BN scale 1 / bias 0, head Dense N(0, 0.01) with zero bias.

Module names follow torchvision's so that `mejax.models.convert` maps keys one to one:
`stem/{conv,bn}`, `layer{1..4}/block{0,1}/{conv1,bn1,conv2,bn2,downsample/{conv,bn}}`, `fc`.

`width_multiplier` scales every width (64/128/256/512) for small CPU presets. A width becomes
`max(1, round(width * width_multiplier))` (Python `round`, halves to even); 1/16 gives 4/8/16/32.
`num_classes=None` returns the layer4 feature map (N, 2, 4, 4, 512 for a 12x64x64 input) with no
pooling and no head; an int adds global average pooling and a Dense head as torchvision does.
`dtype` is the computation dtype (e.g. bfloat16 on GPU); parameters stay float32. Logits are
returned as float32.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mejax.models import conv3d

ModuleDef = Callable[..., nn.Module]

STAGE_WIDTHS = (64, 128, 256, 512)

conv_kernel_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
dense_kernel_init = nn.initializers.normal(stddev=0.01)


def scaled_width(width: int, width_multiplier: float) -> int:
  """A channel count scaled by `width_multiplier`, rounded to nearest, at least 1."""
  return max(1, int(round(width * width_multiplier)))


def _symmetric_padding(kernel_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
  return tuple((k // 2, k // 2) for k in kernel_size)


class Stem(nn.Module):
  """torchvision `BasicStem`: conv (3,7,7) stride (1,2,2) -> BN -> ReLU; keys `stem.0`, `stem.1`."""
  features: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x):
    x = self.conv(self.features, (3, 7, 7), strides=(1, 2, 2),
                  padding=_symmetric_padding((3, 7, 7)), name='conv')(x)
    x = self.norm(name='bn')(x)
    return nn.relu(x)


class Downsample(nn.Module):
  """Projection shortcut: 1x1x1 conv with stride + BN; keys `downsample.0`, `downsample.1`."""
  features: int
  strides: tuple[int, int, int]
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x):
    x = self.conv(self.features, (1, 1, 1), strides=self.strides, padding=((0, 0),) * 3,
                  name='conv')(x)
    return self.norm(name='bn')(x)


class BasicBlock3D(nn.Module):
  """Two 3x3x3 conv-BN layers plus a shortcut; ReLU after the add."""
  features: int
  strides: tuple[int, int, int]
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x):
    padding = _symmetric_padding((3, 3, 3))
    y = self.conv(self.features, (3, 3, 3), strides=self.strides, padding=padding,
                  name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.features, (3, 3, 3), padding=padding, name='conv2')(y)
    y = self.norm(name='bn2')(y)
    shortcut = x
    # torchvision's rule: project when the stride is not 1 or the width changes.
    if self.strides != (1, 1, 1) or x.shape[-1] != self.features:
      shortcut = Downsample(self.features, self.strides, self.conv, self.norm,
                            name='downsample')(x)
    return nn.relu(shortcut + y)


class ResNetStage(nn.Module):
  """One torchvision `layerK`: `num_blocks` blocks, the first with `strides`."""
  features: int
  num_blocks: int
  strides: tuple[int, int, int]
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x):
    for index in range(self.num_blocks):
      strides = self.strides if index == 0 else (1, 1, 1)
      x = BasicBlock3D(self.features, strides, self.conv, self.norm, name=f'block{index}')(x)
    return x


class ResNet3D(nn.Module):
  """Video ResNet with BasicBlocks and no temporal/spatial decomposition (R3D).

  Attributes:
    stage_sizes: blocks per stage; (2, 2, 2, 2) is R3D-18.
    num_classes: size of the Dense head; None returns the last stage's feature map unpooled.
    width_multiplier: scales the widths 64/128/256/512 (see `scaled_width`).
    dtype: computation dtype; parameters are float32.
    conv_lowering: how 3D convolutions reach XLA (one of `conv3d.LOWERINGS`: 'xla',
      'frames2d', 'im2col', 'im2col_t', or 'auto' = per layer on CPU, 'xla' elsewhere).
  """
  stage_sizes: Sequence[int]
  num_classes: int | None = 400
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32
  conv_lowering: str = 'xla'

  @nn.compact
  def __call__(self, x, train: bool):
    conv = functools.partial(conv3d.Conv3D, use_bias=False, dtype=self.dtype,
                             kernel_init=conv_kernel_init, lowering=self.conv_lowering)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             epsilon=1e-5, dtype=self.dtype)
    widths = [scaled_width(width, self.width_multiplier) for width in STAGE_WIDTHS]
    x = Stem(widths[0], conv, norm, name='stem')(x)
    for index, (width, num_blocks) in enumerate(zip(widths, self.stage_sizes)):
      strides = (1, 1, 1) if index == 0 else (2, 2, 2)
      x = ResNetStage(width, num_blocks, strides, conv, norm, name=f'layer{index + 1}')(x)
    if self.num_classes is None:
      return x
    x = jnp.mean(x, axis=(1, 2, 3))  # torchvision's AdaptiveAvgPool3d(1) + flatten
    x = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=dense_kernel_init,
                 bias_init=nn.initializers.zeros, name='fc')(x)
    return x.astype(jnp.float32)


R3D18 = functools.partial(ResNet3D, stage_sizes=(2, 2, 2, 2))
