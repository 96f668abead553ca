"""The 3DCNN-backed ConvLSTM autoencoder of Islam et al. 2022 (MODELS.md §2), the main model.

    clip (N, 12, 64, 64, 3)
      -> R3D-18 up to layer4                        (N, 2, 4, 4, 512)
      -> ConvLSTM autoencoder "2-1-2", 4 cells      (N, 2, 4, 4, F)
      -> Conv3D F -> classes, kernel (1,3,3), padding (0,1,1)
      -> mean over (T, H, W)                        (N, classes) logits

Choices where the paper is ambiguous (each one is named so that it can be changed):

- Autoencoder wiring follows the common EncoderDecoderConvLSTM form: encoder cells E1 (512 -> F) and
  E2 (F -> F) run over the feature length; the encoder vector is E2's last hidden state; decoder
  cells D1 (F -> F) and D2 (F -> F) run for the same length, D1 reading the encoder vector at the
  first step and D2's previous output afterwards. All states, decoder included, start at zero.
  The decoded sequence is D2's outputs stacked over time. (The paper writes that the regenerated
  features are "stacked on h_3"; we read that as the decoder's output, i.e. D2.)
- Cell: one 3x3 conv (SAME padding, stride 1) over concat([x, h]) giving 4F channels with bias,
  split in gate order i, f, o, g. No peepholes by default; `peephole=True` adds the paper's
  Hadamard terms (eqs. 1, 2, 4): W_ci * c_{t-1} and W_cf * c_{t-1} inside the input and forget
  gates and W_co * c_t inside the output gate. As in Shi et al. 2015, each W_c has the state's shape
  (H', W', F) and is learned per position, so peepholes add 3 * H' * W' * F parameters per cell
  and tie the model to one feature-map size (4 x 4 for 64 x 64 clips). They start at zero, so a
  peephole model starts as the plain one.
- Initialisation. Biases and the head follow PyTorch's Conv default (the paper's framework):
  U(+-1/sqrt(fan_in)). The cell kernels do not: with PyTorch's default (weight std
  1/sqrt(3 fan_in), `cell_init_gain` = 1/sqrt(3)) each cell passes on about a tenth of its input's
  variation, since at initialisation the gates sit near sigma(0) = 1/2 and h = o * tanh(i * g)
  scales g by about 1/4. In a width-1/16 model, backbone features varying across inputs with std
  0.76 came out of the four cells with std 2.6e-5, and the model did not leave chance in our CPU
  runs. The default `cell_init_gain` = 4 (weight std 4/sqrt(fan_in)) undoes the gates' 1/4: the
  same features come out with std 0.025, ~1000x more. Set `cell_init_gain=3 ** -0.5` for PyTorch's default.
- The head returns logits; the paper's softmax is left to the loss. (The paper feeds softmax
  outputs to a cross-entropy that applies softmax again; we do not reproduce that.) Logits are
  float32 whatever `dtype` is.
- `hidden_features` F = 101 makes the full model 37,602,902 trainable parameters, the paper's
  "about 37.6 million" (F = 100 gives 37,533,775). `width_multiplier` scales the backbone and F
  alike: F_used = max(1, round(F * width_multiplier)) (6 for 1/16).

The time unrolls use `flax.linen.scan` over axis 1 (time), with the cell parameters broadcast.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mejax.models import conv3d, r3d

# PyTorch's Conv default: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
torch_default_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def cell_kernel_init(gain: float):
  """U(+-gain * sqrt(3 / fan_in)): weight std `gain / sqrt(fan_in)`.

  gain = 1/sqrt(3) is PyTorch's Conv default."""
  return nn.initializers.variance_scaling(gain ** 2, 'fan_in', 'uniform')


def torch_default_bias_init(fan_in: int):
  """PyTorch's Conv bias default U(+-1/sqrt(fan_in)); `fan_in` = in_channels * kernel volume."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def zero_state(batch_spatial_shape, features: int, dtype) -> tuple[jax.Array, jax.Array]:
  """The (c, h) state of a cell at t = 0: zeros of shape (N, H, W, features)."""
  zeros = jnp.zeros((*batch_spatial_shape, features), dtype)
  return zeros, zeros


class CellConv(nn.Module):
  """`nn.Conv(padding='SAME')` over (N, H, W, C), with nn.Conv's parameters (`kernel` (kH, kW, C,
  O), `bias`) and the lowerings of `conv3d` (as a 3D conv over one frame). On XLA:CPU 'auto'
  takes im2col + one matmul for the cells' small maps with many channels (4 x 4 x 613 at paper
  sizes), where XLA's 2D convolution, its kernel gradient most, is slow (docs/benchmarks.md)."""
  features: int
  kernel_size: tuple[int, int]
  dtype: Any
  kernel_init: Any
  bias_init: Any
  lowering: str = 'xla'

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', self.kernel_init,
                        tuple(self.kernel_size) + (x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', self.bias_init, (self.features,), jnp.float32)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    same = tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in self.kernel_size)
    if self.lowering == 'xla':
      y = jax.lax.conv_general_dilated(x, kernel, (1, 1), same,
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    else:
      y = conv3d.conv3d(x[:, None], kernel[None], (1, 1, 1), ((0, 0),) + same,
                        self.lowering)[:, 0]
    return y + bias.astype(self.dtype)


class ConvLSTMCell(nn.Module):
  """One ConvLSTM step: `((c, h), x) -> ((c', h'), h')`, x and h of shape (N, H, W, C).

  One conv over concat([x, h]) gives the pre-activations of the gates i, f, o, g (in that order):
    i = sigma(. + W_ci * c),  f = sigma(. + W_cf * c),  g = tanh(.)
    c' = f * c + i * g
    o = sigma(. + W_co * c'),  h' = o * tanh(c')
  with the W_c terms only when `peephole` is set (per-position weights of the state's shape).
  """
  features: int
  kernel_size: tuple[int, int] = (3, 3)
  peephole: bool = False
  init_gain: float = 4.0
  dtype: Any = jnp.float32
  lowering: str = 'xla'

  @nn.compact
  def __call__(self, carry, x):
    c, h = carry
    inputs = jnp.concatenate([x, h], axis=-1)
    fan_in = inputs.shape[-1] * math.prod(self.kernel_size)
    gates = CellConv(4 * self.features, self.kernel_size, dtype=self.dtype,
                     kernel_init=cell_kernel_init(self.init_gain),
                     bias_init=torch_default_bias_init(fan_in), lowering=self.lowering,
                     name='conv')(inputs)
    i, f, o, g = jnp.split(gates, 4, axis=-1)
    if self.peephole:
      state_shape = c.shape[1:]
      w_ci, w_cf, w_co = (
          self.param(name, nn.initializers.zeros, state_shape, jnp.float32).astype(self.dtype)
          for name in ('peephole_i', 'peephole_f', 'peephole_o'))
      i = i + w_ci * c
      f = f + w_cf * c
    i, f, g = nn.sigmoid(i), nn.sigmoid(f), jnp.tanh(g)
    c = f * c + i * g
    if self.peephole:
      o = o + w_co * c  # eq. (4): the output gate peeks at the new state c_t
    h = nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h


class _EncoderStep(nn.Module):
  """E1 then E2 on one time step; scanned over the input sequence."""
  features: int
  peephole: bool
  init_gain: float
  dtype: Any
  lowering: str

  @nn.compact
  def __call__(self, carry, x):
    state1, state2 = carry
    cell = lambda name: ConvLSTMCell(self.features, peephole=self.peephole,
                                     init_gain=self.init_gain, dtype=self.dtype,
                                     lowering=self.lowering, name=name)
    state1, h1 = cell('cell1')(state1, x)
    state2, h2 = cell('cell2')(state2, h1)
    return (state1, state2), h2


class _DecoderStep(nn.Module):
  """D1 then D2 on one time step; D1 reads the previous step's D2 output (the carry)."""
  features: int
  peephole: bool
  init_gain: float
  dtype: Any
  lowering: str

  @nn.compact
  def __call__(self, carry):
    state1, state2, previous_output = carry
    cell = lambda name: ConvLSTMCell(self.features, peephole=self.peephole,
                                     init_gain=self.init_gain, dtype=self.dtype,
                                     lowering=self.lowering, name=name)
    state1, h1 = cell('cell1')(state1, previous_output)
    state2, h2 = cell('cell2')(state2, h1)
    return (state1, state2, h2), h2


def _scan(step_cls, **kwargs):
  # Parameters are shared by all time steps; axis 1 of inputs and outputs is time.
  return nn.scan(step_cls, variable_broadcast='params', split_rngs={'params': False},
                 in_axes=1, out_axes=1, **kwargs)


class ConvLSTMEncoderDecoder(nn.Module):
  """The 2-1-2 ConvLSTM autoencoder: (N, T, H, W, C) -> (N, T, H, W, features).

  Parameters: `encoder/cell1` = E1, `encoder/cell2` = E2, `decoder/cell1` = D1,
  `decoder/cell2` = D2.
  """
  features: int
  peephole: bool = False
  init_gain: float = 4.0
  dtype: Any = jnp.float32
  lowering: str = 'xla'

  @nn.compact
  def __call__(self, x):
    batch, length, height, width, _ = x.shape
    x = x.astype(self.dtype)
    state = lambda: zero_state((batch, height, width), self.features, self.dtype)
    encoder = _scan(_EncoderStep)(self.features, self.peephole, self.init_gain, self.dtype,
                                  self.lowering, name='encoder')
    (_, (_, encoder_vector)), _ = encoder((state(), state()), x)
    decoder = _scan(_DecoderStep, length=length)(self.features, self.peephole, self.init_gain,
                                                 self.dtype, self.lowering, name='decoder')
    _, decoded = decoder((state(), state(), encoder_vector))
    return decoded


class ConvLSTMAutoencoder(nn.Module):
  """R3D-18 backbone -> ConvLSTM 2-1-2 autoencoder -> Conv3D head -> mean: logits (N, classes).

  Attributes:
    num_classes: output classes (3: negative, positive, surprise).
    hidden_features: F, the channels of every ConvLSTM cell before `width_multiplier`.
    width_multiplier: scales the backbone widths and F (small CPU presets).
    peephole: add the paper's Hadamard peephole terms (see the module docstring).
    cell_init_gain: std of the cells' conv weights times sqrt(fan_in) (see the module docstring).
    dtype: computation dtype; parameters are float32, logits float32.
    conv_lowering: how the convolutions (backbone, cells, head) reach XLA (`conv3d.LOWERINGS`;
      'auto' picks per layer on CPU and 'xla' elsewhere).
  Parameter tree: `backbone` (R3D-18, no fc; load Kinetics weights with
  `mejax.models.convert.with_torchvision_backbone`), `autoencoder`, `head`.
  """
  num_classes: int = 3
  hidden_features: int = 101
  width_multiplier: float = 1.0
  peephole: bool = False
  cell_init_gain: float = 4.0
  dtype: Any = jnp.float32
  conv_lowering: str = 'xla'

  @property
  def features(self) -> int:
    """The ConvLSTM width actually used: F scaled by `width_multiplier`."""
    return r3d.scaled_width(self.hidden_features, self.width_multiplier)

  @nn.compact
  def __call__(self, x, train: bool):
    x = r3d.R3D18(num_classes=None, width_multiplier=self.width_multiplier, dtype=self.dtype,
                  conv_lowering=self.conv_lowering, name='backbone')(x, train=train)
    x = ConvLSTMEncoderDecoder(self.features, peephole=self.peephole,
                               init_gain=self.cell_init_gain, dtype=self.dtype,
                               lowering=self.conv_lowering, name='autoencoder')(x)
    x = conv3d.Conv3D(self.num_classes, (1, 3, 3), padding=((0, 0), (1, 1), (1, 1)),
                      use_bias=True, dtype=self.dtype, kernel_init=torch_default_kernel_init,
                      bias_init=torch_default_bias_init(self.features * 9),
                      lowering=self.conv_lowering, name='head')(x)
    # Adaptive average pooling to 1x1x1: the paper's "structural regulariser"; no Dense layer.
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2, 3))
