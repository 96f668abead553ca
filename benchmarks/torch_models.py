"""Plain-PyTorch twins of mejax's R3D-18 and ConvLSTM autoencoder, for speed comparisons.

A benchmark of mejax against PyTorch only means something when both run the same computation, so
these modules copy `mejax.models.r3d.R3D18` and `mejax.models.convlstm.ConvLSTMAutoencoder`
operation for operation, and `flax_variables_from_torch` moves one model's weights into the
other; `tests/test_torch_baseline.py` checks that logits, BatchNorm statistics, the loss and
gradients then agree.

- `TorchR3D18` is torchvision's `VideoResNet(BasicBlock, [Conv3DSimple] * 4, [2, 2, 2, 2],
  BasicStem)` with the same module names and state_dict keys (`stem.0`, `layer1.0.conv1.0`, ...,
  `fc`), written in plain `torch.nn` so that torchvision is not needed. `width_multiplier` rounds
  widths as mejax does (`scaled_width`); `num_classes=None` returns the unpooled layer4 map.
- `TorchConvLSTMAutoencoder`: backbone (`TorchR3D18(num_classes=None)`) -> the 2-1-2 ConvLSTM
  autoencoder (`autoencoder.{encoder,decoder}.{cell1,cell2}`) -> `head` Conv3d (1, 3, 3) -> mean
  over (T, H, W). Same gate order (i, f, o, g), the conv over cat([x, h]), zero initial states,
  decoder D1 reading E2's last hidden state first and D2's previous output afterwards, D2's
  outputs stacked over time.

Layout is PyTorch's: inputs (N, C, T, H, W) where mejax takes (N, T, H, W, C).
BatchNorm: eps 1e-5, momentum 0.1 (= Flax's 0.9). One difference of the frameworks remains and
is not hidden: in train mode PyTorch updates `running_var` with the unbiased batch variance
(n / (n - 1) times the biased one), Flax with the biased one. Normalisation itself uses the biased
variance in both, so logits, losses and gradients are the same.

This module imports neither JAX nor Flax at import time (the benchmark runs without them);
`flax_variables_from_torch` and `mejax_twin` import mejax when called.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

STAGE_WIDTHS = (64, 128, 256, 512)
BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # PyTorch's convention; Flax's momentum 0.9


def scaled_width(width: int, width_multiplier: float) -> int:
  """`mejax.models.r3d.scaled_width`, copied to keep this module free of JAX."""
  return max(1, int(round(width * width_multiplier)))


def _batch_norm(channels: int) -> nn.BatchNorm3d:
  return nn.BatchNorm3d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class Conv3DSimple(nn.Conv3d):
  """torchvision's `Conv3DSimple`: 3x3x3 conv, padding 1, no bias."""

  def __init__(self, in_planes: int, out_planes: int, stride: int = 1):
    super().__init__(in_planes, out_planes, kernel_size=(3, 3, 3), stride=stride, padding=1,
                     bias=False)


class BasicStem(nn.Sequential):
  """torchvision's `BasicStem`: conv (3, 7, 7) stride (1, 2, 2) -> BN -> ReLU, no max-pool."""

  def __init__(self, in_channels: int, features: int):
    super().__init__(
        nn.Conv3d(in_channels, features, kernel_size=(3, 7, 7), stride=(1, 2, 2),
                  padding=(1, 3, 3), bias=False),
        _batch_norm(features),
        nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
  """torchvision's video `BasicBlock`: (conv-BN-ReLU, conv-BN) + shortcut, ReLU after the add."""

  def __init__(self, inplanes: int, planes: int, stride: int = 1,
               downsample: nn.Module | None = None):
    super().__init__()
    self.conv1 = nn.Sequential(Conv3DSimple(inplanes, planes, stride), _batch_norm(planes),
                               nn.ReLU(inplace=True))
    self.conv2 = nn.Sequential(Conv3DSimple(planes, planes), _batch_norm(planes))
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    residual = x if self.downsample is None else self.downsample(x)
    out = self.conv2(self.conv1(x))
    return self.relu(out + residual)


def _make_layer(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
  downsample = None
  if stride != 1 or inplanes != planes:  # torchvision's rule, as mejax's BasicBlock3D
    downsample = nn.Sequential(
        nn.Conv3d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
        _batch_norm(planes))
  layers = [BasicBlock(inplanes, planes, stride, downsample)]
  layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
  return nn.Sequential(*layers)


class TorchR3D18(nn.Module):
  """R3D-18 as torchvision's `r3d_18`, (N, C, T, H, W) -> logits (N, classes) or layer4 map.

  Args:
    num_classes: size of the Linear head after global average pooling; None returns the layer4
      feature map (N, C4, T', H', W') with neither pooling nor head (mejax's `num_classes=None`).
    width_multiplier: scales the widths 64/128/256/512 (`scaled_width`).
    in_channels: input channels (3 for RGB clips).
  Init as torchvision: conv kaiming_normal (fan_out, relu), BN 1 / 0, fc N(0, 0.01) / 0.
  """

  def __init__(self, num_classes: int | None = 400, width_multiplier: float = 1.0,
               in_channels: int = 3):
    super().__init__()
    self.num_classes = num_classes
    self.width_multiplier = width_multiplier
    self.in_channels = in_channels
    widths = [scaled_width(width, width_multiplier) for width in STAGE_WIDTHS]
    self.widths = tuple(widths)
    self.stem = BasicStem(in_channels, widths[0])
    inplanes = widths[0]
    for index, width in enumerate(widths):
      setattr(self, f'layer{index + 1}', _make_layer(inplanes, width, 2, 1 if index == 0 else 2))
      inplanes = width
    if num_classes is not None:
      self.avgpool = nn.AdaptiveAvgPool3d(1)
      self.fc = nn.Linear(widths[-1], num_classes)
    for module in self.modules():
      if isinstance(module, nn.Conv3d):
        nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
      elif isinstance(module, nn.BatchNorm3d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
      elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0, 0.01)
        nn.init.zeros_(module.bias)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.stem(x)
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    if self.num_classes is None:
      return x
    x = self.avgpool(x).flatten(1)
    return self.fc(x).float()


class TorchConvLSTMCell(nn.Module):
  """mejax's `ConvLSTMCell`: one Conv2d over cat([x, h]) -> gates i, f, o, g (in that order).

  `peephole` adds per-position Hadamard weights of the state's shape, stored (F, H', W')
  (channels first; mejax stores them (H', W', F)), so `peephole_size` = (H', W') must be given.
  The conv kernel is U(+-gain * sqrt(3 / fan_in)) as mejax's `cell_kernel_init`; the bias keeps
  PyTorch's default U(+-1 / sqrt(fan_in)), which is mejax's too.
  """

  def __init__(self, in_channels: int, features: int, kernel_size: int = 3,
               peephole: bool = False, peephole_size: Sequence[int] | None = None,
               init_gain: float = 4.0):
    super().__init__()
    self.features = features
    self.peephole = peephole
    # Flax 'SAME' with stride 1 and an odd kernel pads k // 2 on both sides.
    self.conv = nn.Conv2d(in_channels + features, 4 * features, kernel_size,
                          padding=kernel_size // 2)
    fan_in = (in_channels + features) * kernel_size ** 2
    bound = init_gain * math.sqrt(3.0 / fan_in)
    nn.init.uniform_(self.conv.weight, -bound, bound)
    if peephole:
      if peephole_size is None:
        raise ValueError('peephole=True needs peephole_size, the (H, W) of the layer4 map')
      shape = (features, *peephole_size)
      self.peephole_i = nn.Parameter(torch.zeros(shape))
      self.peephole_f = nn.Parameter(torch.zeros(shape))
      self.peephole_o = nn.Parameter(torch.zeros(shape))

  def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W), (c, h) -> (c', h')."""
    c, h = state
    i, f, o, g = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
    if self.peephole:
      i = i + self.peephole_i * c
      f = f + self.peephole_f * c
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    if self.peephole:
      o = o + self.peephole_o * c  # the output gate peeks at the new state, as in mejax
    h = torch.sigmoid(o) * torch.tanh(c)
    return c, h


class TorchConvLSTMEncoderDecoder(nn.Module):
  """mejax's 2-1-2 `ConvLSTMEncoderDecoder`: (N, C, T, H, W) -> (N, F, T, H, W).

  E1, E2 run over the input; D1, D2 run for the same length from zero states, D1 reading E2's
  last hidden state at the first step and D2's previous output afterwards; D2's outputs are
  stacked over time. A Python loop over time (mejax uses `nn.scan`; same arithmetic).
  """

  def __init__(self, in_channels: int, features: int, peephole: bool = False,
               peephole_size: Sequence[int] | None = None, init_gain: float = 4.0):
    super().__init__()
    self.features = features

    def cell(cell_in):
      return TorchConvLSTMCell(cell_in, features, peephole=peephole, peephole_size=peephole_size,
                               init_gain=init_gain)

    self.encoder = nn.ModuleDict({'cell1': cell(in_channels), 'cell2': cell(features)})
    self.decoder = nn.ModuleDict({'cell1': cell(features), 'cell2': cell(features)})

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    batch, _, length, height, width = x.shape
    zeros = x.new_zeros((batch, self.features, height, width))
    state1 = state2 = (zeros, zeros)
    for frame in x.unbind(2):
      state1 = self.encoder['cell1'](frame, state1)
      state2 = self.encoder['cell2'](state1[1], state2)
    output = state2[1]  # the encoder vector
    state1 = state2 = (zeros, zeros)
    outputs = []
    for _ in range(length):
      state1 = self.decoder['cell1'](output, state1)
      state2 = self.decoder['cell2'](state1[1], state2)
      output = state2[1]
      outputs.append(output)
    return torch.stack(outputs, dim=2)


class TorchConvLSTMAutoencoder(nn.Module):
  """mejax's `ConvLSTMAutoencoder`: R3D-18 -> ConvLSTM 2-1-2 -> Conv3d (1,3,3) -> mean: logits.

  Args:
    num_classes: output classes.
    width_multiplier: scales the backbone widths and `hidden_features` alike.
    hidden_features: F before `width_multiplier` (101: the paper's 37.6 M parameters).
    peephole: the paper's Hadamard peepholes; they tie the model to one layer4 map size,
      `peephole_size` (4 x 4 for 64 x 64 clips; size / 16 in general).
    cell_init_gain: mejax's `cell_init_gain` (std of the cell kernels times sqrt(fan_in)).
    in_channels: input channels.
  State_dict keys: `backbone.*` (torchvision r3d_18 keys, no fc), `autoencoder.encoder.cell1.*`
  (E1), `.encoder.cell2` (E2), `.decoder.cell1` (D1), `.decoder.cell2` (D2), `head.*`.
  """

  def __init__(self, num_classes: int = 3, width_multiplier: float = 1.0,
               hidden_features: int = 101, peephole: bool = False, *,
               peephole_size: Sequence[int] = (4, 4), cell_init_gain: float = 4.0,
               in_channels: int = 3):
    super().__init__()
    self.num_classes = num_classes
    self.width_multiplier = width_multiplier
    self.hidden_features = hidden_features
    self.peephole = peephole
    self.peephole_size = tuple(peephole_size)
    self.cell_init_gain = cell_init_gain
    self.in_channels = in_channels
    self.features = scaled_width(hidden_features, width_multiplier)
    self.backbone = TorchR3D18(num_classes=None, width_multiplier=width_multiplier,
                               in_channels=in_channels)
    self.autoencoder = TorchConvLSTMEncoderDecoder(
        self.backbone.widths[-1], self.features, peephole=peephole,
        peephole_size=self.peephole_size, init_gain=cell_init_gain)
    # PyTorch's Conv3d default init is mejax's head init (U(+-1/sqrt(fan_in)) weight and bias).
    self.head = nn.Conv3d(self.features, num_classes, (1, 3, 3), padding=(0, 1, 1))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.head(self.autoencoder(self.backbone(x)))
    return x.float().mean(dim=(2, 3, 4))


# --------------------------------------------------------------------------- weights to Flax

# Flax layout of a PyTorch array, by the Flax array's rank: flax = torch.permute(perm).
_FLAX_PERMUTATION = {
    5: (2, 3, 4, 1, 0),  # Conv3d (out, in, kT, kH, kW) -> (kT, kH, kW, in, out)
    4: (2, 3, 1, 0),     # Conv2d (out, in, kH, kW) -> (kH, kW, in, out)
    3: (1, 2, 0),        # peephole (F, H, W) -> (H, W, F)
    2: (1, 0),           # Linear (out, in) -> (in, out)
    1: (0,),
}


def _torch_shape(flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  permutation = _FLAX_PERMUTATION[len(flax_shape)]
  shape = [0] * len(flax_shape)
  for flax_axis, torch_axis in enumerate(permutation):
    shape[torch_axis] = flax_shape[flax_axis]
  return tuple(shape)


def mejax_twin(model: nn.Module, dtype: Any = None, conv_lowering: str = 'xla'):
  """The mejax Flax module that computes what `model` computes (same widths, classes, cells)."""
  import jax.numpy as jnp

  from mejax.models import convlstm, r3d

  dtype = jnp.float32 if dtype is None else dtype
  if isinstance(model, TorchR3D18):
    return r3d.R3D18(num_classes=model.num_classes, width_multiplier=model.width_multiplier,
                     dtype=dtype, conv_lowering=conv_lowering)
  if isinstance(model, TorchConvLSTMAutoencoder):
    return convlstm.ConvLSTMAutoencoder(
        num_classes=model.num_classes, hidden_features=model.hidden_features,
        width_multiplier=model.width_multiplier, peephole=model.peephole,
        cell_init_gain=model.cell_init_gain, dtype=dtype, conv_lowering=conv_lowering)
  raise TypeError(f'No mejax twin for {type(model).__name__}')


def _torch_key(model: nn.Module, collection: str, path: tuple[str, ...]) -> str:
  """The state_dict key of the Flax variable `collection/path` of `mejax_twin(model)`."""
  from mejax.models import convert

  if isinstance(model, TorchR3D18):
    return convert.torch_key(collection, path)
  if path[0] == 'backbone':
    return 'backbone.' + convert.torch_key(collection, path[1:])
  # autoencoder/{encoder,decoder}/cellK/{conv/{kernel,bias},peephole_*} and head/{kernel,bias}:
  # the same names, with Flax's `kernel` called `weight`.
  *module_path, name = path
  return '.'.join([*module_path, 'weight' if name == 'kernel' else name])


def flax_variables_from_torch(model: nn.Module,
                              state_dict: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """{'params': ..., 'batch_stats': ...} of `mejax_twin(model)` from `model`'s weights.

  Args:
    model: a `TorchR3D18` or `TorchConvLSTMAutoencoder`; it fixes the architecture.
    state_dict: the weights (tensors or arrays, PyTorch layout); default `model.state_dict()`.
  Raises:
    KeyError: naming the first key (in `model`'s state_dict order) missing from `state_dict`,
      or the first unexpected key.
    ValueError: naming the first array whose shape is not the architecture's.
  The backbone keys are mejax's torchvision mapping (`mejax.models.convert.torch_key`); BN
  `num_batches_tracked` is ignored.
  """
  import flax
  import jax
  import jax.numpy as jnp

  twin = mejax_twin(model)
  # Parameter shapes do not depend on the clip, except for peepholes: the layer4 map is size / 16.
  height, width = model.peephole_size if getattr(model, 'peephole', False) else (1, 1)
  dummy = jnp.zeros((1, 1, 16 * height, 16 * width, model.in_channels), jnp.float32)
  template = jax.eval_shape(lambda: twin.init(jax.random.key(0), dummy, train=False))
  expected = {}  # torch key -> (collection, flax path, flax shape)
  for collection, tree in template.items():
    for path, leaf in flax.traverse_util.flatten_dict(tree).items():
      expected[_torch_key(model, collection, path)] = (collection, path, tuple(leaf.shape))

  if state_dict is None:
    state_dict = model.state_dict()
  arrays = {key: value for key, value in state_dict.items()
            if not key.endswith('num_batches_tracked')}
  model_order = {key: index for index, key in enumerate(model.state_dict())}
  ordered = sorted(expected, key=lambda key: (model_order.get(key, len(model_order)), key))
  missing = [key for key in ordered if key not in arrays]
  if missing:
    more = f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''
    raise KeyError(f'state_dict lacks {missing[0]!r}{more} for {type(model).__name__}')
  unexpected = [key for key in arrays if key not in expected]
  if unexpected:
    more = f' (and {len(unexpected) - 1} more)' if len(unexpected) > 1 else ''
    raise KeyError(f'unexpected key {unexpected[0]!r}{more} in state_dict for '
                   f'{type(model).__name__}')

  converted = {collection: {} for collection in template}
  for key in ordered:
    collection, path, flax_shape = expected[key]
    value = arrays[key]
    if isinstance(value, torch.Tensor):
      value = value.detach().cpu().float().numpy()
    value = np.asarray(value, np.float32)
    if value.shape != _torch_shape(flax_shape):
      raise ValueError(f'{key}: got shape {value.shape}, expected {_torch_shape(flax_shape)} '
                       f'for {type(model).__name__}(width_multiplier={model.width_multiplier})')
    converted[collection][path] = jnp.asarray(value.transpose(_FLAX_PERMUTATION[value.ndim]))
  return {collection: flax.traverse_util.unflatten_dict(flat)
          for collection, flat in converted.items()}
