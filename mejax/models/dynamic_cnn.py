"""Region CNNs over a dynamic image, after Le et al. 2020 (MODELS.md §6).

The paper magnifies a clip (EVM), rank-pools it into one RGB dynamic image, crops regions of
interest around the eyebrows, nose and mouth (eyes masked) and classifies with VGG19, ResNet50 or
SENet50 pre-trained on faces (PyTorch, SGD lr 1e-4, 30 epochs). The dynamic image and the crops
are host-side preprocessing; these are the classifiers, small and trained from scratch.

Input (N, 1, H, W, C), T == 1 (squeezed here): the region crops of one dynamic image, each resized
host-side to the same H x W, stacked on channels in the order eyebrows, nose, mouth, each with
C / num_regions channels (RGB: C = 3 x 3 = 9).

    VGGStyle      per block b: [conv 3x3 (pad 1) -> BN -> ReLU] x convs_per_block -> max-pool 2x2
                  widths (32, 64, 128, 256) -> global average pool
    ResNetStyle   stem conv 3x3 stride 1 -> BN -> ReLU (or ResNet's 7x7/2 + max-pool 3x3/2)
                  4 stages x 2 basic blocks, widths (32, 64, 128, 256), strides 1, 2, 2, 2
                  -> global average pool
    then          [Dropout] -> Dense num_classes (logits)

Region fusion (`region_fusion`):

- 'shared' (default): the same CNN runs on each region (regions folded into the batch); the R
  pooled feature vectors are concatenated in region order and one Dense classifies them.
- 'channels': the regions enter one CNN as input channels (one image with R x 3 channels).

What the paper does is not spelt out. It says that "only a fixed number of localized facial areas
are extracted on the dynamic images", that "the elicited dynamic image after being patched for
region of interests" goes through the CNN, and it reports one accuracy per architecture, with no
per-region classifiers, voting or late fusion. The likeliest reading is one image per sample made
of the ROIs, classified by one CNN. 'shared' is the closest form for separately cropped regions
of different places on the face: each crop is seen as an image by the same filters, and the
classifier sees all regions at once. Where this choice matters, compare it with 'channels'.

Choices (each one named so that it can be changed):

- Width: `widths` (default 32/64/128/256, not VGG19's 64..512 or ResNet50's bottlenecks), each
  scaled by `width_multiplier` as `r3d.scaled_width` does (round, at least 1).
- VGGStyle: `convs_per_block` = 2 in every block (VGG19 has 2, 2, 4, 4, 4), BatchNorm after each
  conv (`batch_norm`; as torchvision's vgg19_bn) and no conv bias when it is there (BN's offset
  plays that role), max-pool 2x2 stride 2 without padding (floors), GAP instead of VGG's three
  fully connected layers.
- ResNetStyle: ResNet-18's basic blocks (conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU after the
  add; 1x1 conv + BN projection shortcut when the stride or width changes, as torchvision).
  `stem='small'` (default): one 3x3 stride-1 conv with no max-pool, because region crops are small
  (a 32 x 32 crop would be 8 x 8 after ResNet's stem and 1 x 1 after the last stage);
  `stem='imagenet'` is torchvision's 7x7 stride-2 conv + 3x3 stride-2 max-pool (padding 1).
- With 'shared' the BatchNorm statistics are computed over the N x R region images together.
- Initialisation as torchvision's VGG and ResNet (the paper's framework): conv kernels
  He-normal fan_out (kaiming_normal_, mode='fan_out'), BN scale 1 / offset 0; the Dense head
  N(0, 0.01) with zero bias (torchvision's VGG classifier init). BN momentum 0.9, epsilon 1e-5.
- `dropout_rate` (default 0: the GAP head replaces VGG's dropout-regularised FC layers) applies
  dropout to the pooled features before the Dense.
- Logits are float32; softmax belongs to the loss.

Parameters at the default widths, 3 regions x RGB, 3 classes: VGGStyle 1,175,523 ('shared') /
1,175,715 ('channels'); ResNetStyle 2,797,347 / 2,797,539 (2,801,187 with the 'imagenet' stem,
'shared'). For scale, VGG19 has about 144 M and ResNet50 about 25.6 M (ImageNet heads).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mejax.models import r3d

ModuleDef = Callable[..., nn.Module]

DEFAULT_WIDTHS = (32, 64, 128, 256)
REGION_ORDER = ('eyebrows', 'nose', 'mouth')
REGION_FUSIONS = ('shared', 'channels')
RESNET_STEMS = ('small', 'imagenet')

# torchvision's VGG/ResNet init: kaiming_normal_(mode='fan_out', nonlinearity='relu').
conv_kernel_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
dense_kernel_init = nn.initializers.normal(stddev=0.01)


class VGGBackbone(nn.Module):
  """VGG-style blocks -> global average pool: (N, H, W, C) -> (N, widths[-1])."""
  widths: Sequence[int]
  convs_per_block: int = 2
  batch_norm: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    for block, width in enumerate(self.widths):
      for index in range(self.convs_per_block):
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), use_bias=not self.batch_norm,
                    dtype=self.dtype, kernel_init=conv_kernel_init,
                    bias_init=nn.initializers.zeros, name=f'block{block + 1}_conv{index + 1}')(x)
        if self.batch_norm:
          x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                           dtype=self.dtype, name=f'block{block + 1}_bn{index + 1}')(x)
        x = nn.relu(x)
      x = nn.max_pool(x, (2, 2), strides=(2, 2), padding='VALID')
    return jnp.mean(x, axis=(1, 2))


class BasicBlock2D(nn.Module):
  """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN plus the shortcut, ReLU after the add."""
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x):
    strides = (self.strides, self.strides)
    y = self.conv(self.features, (3, 3), strides=strides, padding=((1, 1), (1, 1)),
                  name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.features, (3, 3), padding=((1, 1), (1, 1)), name='conv2')(y)
    y = self.norm(name='bn2')(y)
    shortcut = x
    if self.strides != 1 or x.shape[-1] != self.features:  # torchvision's projection rule
      shortcut = self.conv(self.features, (1, 1), strides=strides, padding='VALID',
                           name='downsample_conv')(x)
      shortcut = self.norm(name='downsample_bn')(shortcut)
    return nn.relu(shortcut + y)


class ResNetBackbone(nn.Module):
  """ResNet-18-like 2D network -> global average pool: (N, H, W, C) -> (N, widths[-1])."""
  widths: Sequence[int]
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  stem: str = 'small'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype,
                             kernel_init=conv_kernel_init)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             epsilon=1e-5, dtype=self.dtype)
    if self.stem == 'imagenet':
      x = conv(self.widths[0], (7, 7), strides=(2, 2), padding=((3, 3), (3, 3)),
               name='stem_conv')(x)
      x = nn.relu(norm(name='stem_bn')(x))
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    else:
      x = conv(self.widths[0], (3, 3), padding=((1, 1), (1, 1)), name='stem_conv')(x)
      x = nn.relu(norm(name='stem_bn')(x))
    for stage, (width, num_blocks) in enumerate(zip(self.widths, self.stage_sizes)):
      for index in range(num_blocks):
        strides = 2 if stage > 0 and index == 0 else 1
        x = BasicBlock2D(width, strides, conv, norm, name=f'layer{stage + 1}_block{index}')(x)
    return jnp.mean(x, axis=(1, 2))


class _RegionCNN(nn.Module):
  """Shared attributes and the region split/fusion of `VGGStyle` and `ResNetStyle`.

  Subclasses build their feature extractor in `make_backbone` and may check sizes in
  `check_spatial`.
  """
  num_classes: int = 3
  num_regions: int = 3
  region_fusion: str = 'shared'
  widths: Sequence[int] = DEFAULT_WIDTHS
  width_multiplier: float = 1.0
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  def scaled_widths(self) -> tuple[int, ...]:
    return tuple(r3d.scaled_width(width, self.width_multiplier) for width in self.widths)

  def make_backbone(self) -> nn.Module:
    raise NotImplementedError

  def check_spatial(self, height: int, width: int) -> None:
    pass

  def _check_input(self, shape) -> None:
    model = type(self).__name__
    if self.region_fusion not in REGION_FUSIONS:
      raise ValueError(f'{model}: unknown region_fusion {self.region_fusion!r}; '
                       f'known: {REGION_FUSIONS}')
    if self.num_regions < 1:
      raise ValueError(f'{model}: num_regions must be >= 1, got {self.num_regions}')
    if len(shape) != 5 or shape[1] != 1:
      raise ValueError(f'{model}: expects one dynamic image per sample, (N, 1, H, W, C) with the '
                       f'region crops stacked on C, got shape {tuple(shape)}')
    if shape[-1] % self.num_regions:
      raise ValueError(f'{model}: {shape[-1]} input channels do not split into '
                       f'{self.num_regions} regions of equal channel count')
    self.check_spatial(shape[2], shape[3])

  @nn.compact
  def __call__(self, x, train: bool):
    self._check_input(x.shape)
    x = x[:, 0].astype(self.dtype)
    batch, height, width, channels = x.shape
    backbone = self.make_backbone()
    if self.region_fusion == 'shared':
      # (N, H, W, R * c) -> (N * R, H, W, c), region-major within each sample.
      x = x.reshape(batch, height, width, self.num_regions, channels // self.num_regions)
      x = jnp.moveaxis(x, 3, 1).reshape(batch * self.num_regions, height, width, -1)
      features = backbone(x, train=train)
      features = features.reshape(batch, -1)  # [eyebrows features, nose features, mouth ...]
    else:
      features = backbone(x, train=train)
    features = nn.Dropout(self.dropout_rate)(features, deterministic=not train)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=dense_kernel_init,
                      bias_init=nn.initializers.zeros, name='classifier')(features)
    return logits.astype(jnp.float32)


class VGGStyle(_RegionCNN):
  """VGG-style region classifier: (N, 1, H, W, R * c) -> logits (N, num_classes).

  Attributes (besides `_RegionCNN`'s num_classes, num_regions, region_fusion, widths,
  width_multiplier, dropout_rate, dtype):
    convs_per_block: 3x3 convolutions before each max-pool.
    batch_norm: BatchNorm after each convolution (then the convolutions have no bias).
  Parameter tree: `backbone/block{b}_conv{i}`, `backbone/block{b}_bn{i}`, `classifier`.
  H and W must be at least 2 ** len(widths) (16 by default): every block halves them.
  """
  convs_per_block: int = 2
  batch_norm: bool = True

  def make_backbone(self) -> nn.Module:
    return VGGBackbone(self.scaled_widths(), self.convs_per_block, self.batch_norm,
                       dtype=self.dtype, name='backbone')

  def check_spatial(self, height: int, width: int) -> None:
    h, w = height, width
    for block in range(len(self.widths)):
      if h < 2 or w < 2:
        side = 2 ** len(self.widths)
        raise ValueError(
            f'VGGStyle block{block + 1} max-pool: 2x2 window larger than its {h}x{w} input; '
            f'{len(self.widths)} blocks need region crops of at least {side}x{side}, got '
            f'{height}x{width}')
      h, w = h // 2, w // 2


class ResNetStyle(_RegionCNN):
  """ResNet-18-like region classifier: (N, 1, H, W, R * c) -> logits (N, num_classes).

  Attributes (besides `_RegionCNN`'s):
    stage_sizes: basic blocks per stage (ResNet-18: 2, 2, 2, 2), one stage per width.
    stem: 'small' (3x3 stride-1 conv) or 'imagenet' (7x7/2 conv + 3x3/2 max-pool).
  Parameter tree: `backbone/stem_{conv,bn}`, `backbone/layer{s}_block{i}/...`, `classifier`.
  Padded stride-2 layers never reach size 0, so any H, W >= 1 runs.
  """
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  stem: str = 'small'

  def make_backbone(self) -> nn.Module:
    return ResNetBackbone(self.scaled_widths(), tuple(self.stage_sizes), self.stem,
                          dtype=self.dtype, name='backbone')

  def check_spatial(self, height: int, width: int) -> None:
    if self.stem not in RESNET_STEMS:
      raise ValueError(f'ResNetStyle: unknown stem {self.stem!r}; known: {RESNET_STEMS}')
    if len(self.stage_sizes) != len(self.widths):
      raise ValueError(f'ResNetStyle: {len(self.stage_sizes)} stage sizes for '
                       f'{len(self.widths)} widths')
