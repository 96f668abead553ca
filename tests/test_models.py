"""R3D-18, the ConvLSTM autoencoder, the model registry and the torchvision weight converter.

Full-width models are only traced (`jax.eval_shape`) or run on tiny clips: XLA:CPU 3D convs are
slow. Models that train run at width_multiplier 1/16.
"""

from __future__ import annotations

import functools
import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mejax import models
from mejax.models import convert, convlstm, r3d

CLIP_SHAPE = (2, 12, 64, 64, 3)  # the paper's clips: 12 frames of 64 x 64 RGB
SMALL = 1 / 16
PAPER_PARAMETERS = 37.6e6
CONVLSTM_PARAMETERS = 37_602_902  # F = 101, no peepholes
FLOAT32 = np.dtype('float32')


def init_key(seed: int = 0):
  # XLA:CPU compiles threefry for rank-5 kernels very slowly (about 1 s per kernel); the
  # initialiser's random bits need no quality here.
  return jax.random.key(seed, impl='unsafe_rbg')


def count_parameters(tree) -> int:
  return sum(leaf.size for leaf in jax.tree_util.tree_leaves(tree))


def abstract_variables(model, shape=CLIP_SHAPE):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))


def random_clips(shape=CLIP_SHAPE, seed=1) -> np.ndarray:
  # numpy, not jax.random: each new rank-5 threefry shape costs seconds of XLA:CPU compile.
  return np.random.default_rng(seed).standard_normal(shape, np.float32)


def flat(tree):
  return flax.traverse_util.flatten_dict(tree, sep='/')


# ----------------------------------------------------------------------------------- R3D-18


def test_r3d18_stage_shapes_follow_models_md():
  model = r3d.R3D18(num_classes=None)
  stages = ('stem', 'layer1', 'layer2', 'layer3', 'layer4')

  def forward():
    x = jnp.zeros(CLIP_SHAPE)
    variables = model.init(jax.random.key(0), x, train=False)
    return model.apply(variables, x, train=False, mutable=['intermediates'],
                       capture_intermediates=lambda module, method: (
                           method == '__call__' and module.path in [(s,) for s in stages]))

  features, state = jax.eval_shape(forward)
  shapes = {name: out['__call__'][0].shape for name, out in state['intermediates'].items()}
  assert shapes == {
      'stem': (2, 12, 32, 32, 64),
      'layer1': (2, 12, 32, 32, 64),
      'layer2': (2, 6, 16, 16, 128),
      'layer3': (2, 3, 8, 8, 256),
      'layer4': (2, 2, 4, 4, 512),
  }
  assert features.shape == (2, 2, 4, 4, 512)  # num_classes=None: the unpooled layer4 map


def test_r3d18_parameter_counts_match_torchvision():
  with_head = abstract_variables(r3d.R3D18(num_classes=400))
  assert count_parameters(with_head['params']) == 33_371_472
  assert count_parameters(abstract_variables(r3d.R3D18(num_classes=None))['params']) == 33_166_272
  # 20 BatchNorms carry running mean and variance.
  assert len(flat(with_head['batch_stats'])) == 40


def test_r3d18_bfloat16_computes_in_bf16_with_float32_parameters():
  model = r3d.R3D18(num_classes=None, dtype=jnp.bfloat16)
  variables = abstract_variables(model)
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(variables)} == {FLOAT32}
  features = jax.eval_shape(functools.partial(model.apply, train=False), variables,
                            jnp.zeros(CLIP_SHAPE))
  assert features.dtype == jnp.bfloat16
  logits = jax.eval_shape(
      functools.partial(r3d.R3D18(num_classes=3, dtype=jnp.bfloat16).apply, train=False),
      abstract_variables(r3d.R3D18(num_classes=3)), jnp.zeros(CLIP_SHAPE))
  assert (logits.shape, logits.dtype) == ((2, 3), jnp.float32)


def test_scaled_width_rounds_and_keeps_one_channel():
  assert [r3d.scaled_width(w, SMALL) for w in r3d.STAGE_WIDTHS] == [4, 8, 16, 32]
  assert r3d.scaled_width(64, 0.001) == 1
  assert convlstm.ConvLSTMAutoencoder(width_multiplier=SMALL).features == 6  # round(101 / 16)


# ------------------------------------------------------------------- ConvLSTM autoencoder


def test_convlstm_parameter_count_matches_paper():
  model = convlstm.ConvLSTMAutoencoder()
  assert model.hidden_features == 101
  params = abstract_variables(model)['params']
  total = count_parameters(params)
  assert total == CONVLSTM_PARAMETERS
  assert abs(total - PAPER_PARAMETERS) / PAPER_PARAMETERS < 0.01
  # Backbone without fc + cells (9 * (in + F) * 4F + 4F each) + head (9 * F * 3 + 3).
  f = 101
  assert count_parameters(params['backbone']) == 33_166_272
  assert count_parameters(params['autoencoder']) == 252 * f * f + 18_448 * f
  assert count_parameters(params['head']) == 27 * f + 3


def test_peepholes_add_three_state_shaped_weights_per_cell():
  params = abstract_variables(convlstm.ConvLSTMAutoencoder(peephole=True))['params']
  # 4 cells x 3 gates x (H' x W' x F) = 4 * 3 * (4 * 4 * 101)
  assert count_parameters(params) - CONVLSTM_PARAMETERS == 4 * 3 * 4 * 4 * 101
  assert params['autoencoder']['decoder']['cell2']['peephole_o'].shape == (4, 4, 101)


def test_convlstm_returns_float32_logits_per_clip():
  for dtype in (jnp.float32, jnp.bfloat16):
    model = models.get_model('convlstm_ae', num_classes=3, dtype=dtype)
    variables = abstract_variables(model)
    logits = jax.eval_shape(functools.partial(model.apply, train=False), variables,
                            jnp.zeros(CLIP_SHAPE))
    assert (logits.shape, logits.dtype) == ((2, 3), jnp.float32)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(variables)} == {FLOAT32}


SMALL_MODEL = convlstm.ConvLSTMAutoencoder(num_classes=3, width_multiplier=SMALL)


@jax.jit  # module level: compiles once for every test that trains the small model
def small_train_loss_and_grads(params, batch_stats, clips):
  def loss(params):
    logits, updates = SMALL_MODEL.apply({'params': params, 'batch_stats': batch_stats}, clips,
                                        train=True, mutable=['batch_stats'])
    labels = jnp.arange(clips.shape[0]) % 3
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1)), updates

  return jax.value_and_grad(loss, has_aux=True)(params)


@pytest.fixture(scope='module')
def small_init():
  """(eval-mode logits, fresh variables) of the small model: one compile for both."""
  return jax.jit(functools.partial(SMALL_MODEL.init_with_output, train=False))(
      {'params': init_key()}, random_clips())


@pytest.fixture(scope='module')
def small_variables(small_init):
  return small_init[1]


def test_small_convlstm_runs_in_eval_mode(small_init):
  logits, variables = small_init  # init runs the forward pass with train=False
  assert set(variables) == {'params', 'batch_stats'}
  assert logits.shape == (2, 3)
  assert np.all(np.isfinite(logits))
  assert not np.allclose(logits[0], logits[1])  # the clips differ, so should the logits


def test_small_convlstm_trains_updates_batch_stats_and_has_finite_gradients(small_variables):
  (loss, updates), grads = small_train_loss_and_grads(
      small_variables['params'], small_variables['batch_stats'], random_clips())
  assert np.isfinite(loss)
  old_stats, new_stats = flat(small_variables['batch_stats']), flat(updates['batch_stats'])
  assert old_stats.keys() == new_stats.keys()
  assert all(not np.allclose(old_stats[k], new_stats[k]) for k in old_stats)
  for name, grad in flat(grads).items():
    assert np.all(np.isfinite(grad)), name
    assert np.any(grad != 0), f'{name} gets no gradient'  # every cell and the head are wired in


def reference_cell(params, state, x, peephole):
  """A ConvLSTM step written out: conv over [x, h], gates i, f, o, g, peepholes on c."""
  c, h = state
  z = jax.lax.conv_general_dilated(jnp.concatenate([x, h], -1), params['conv']['kernel'],
                                   (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  i, f, o, g = jnp.split(z + params['conv']['bias'], 4, axis=-1)
  if peephole:
    i, f = i + params['peephole_i'] * c, f + params['peephole_f'] * c
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  if peephole:
    o = o + params['peephole_o'] * c
  return c, jax.nn.sigmoid(o) * jnp.tanh(c)


def reference_autoencoder(params, x, features, peephole):
  """Python loops over time: E1, E2 from zeros; D1 fed the encoder vector, then D2's output."""
  batch, length, height, width, _ = x.shape
  zeros = jnp.zeros((batch, height, width, features))
  cell = lambda which, name, state, inputs: reference_cell(params[which][name], state, inputs,
                                                           peephole)
  e1 = e2 = (zeros, zeros)
  for t in range(length):
    e1 = cell('encoder', 'cell1', e1, x[:, t])
    e2 = cell('encoder', 'cell2', e2, e1[1])
  feed = e2[1]  # the encoder vector
  d1 = d2 = (zeros, zeros)
  outputs = []
  for _ in range(length):
    d1 = cell('decoder', 'cell1', d1, feed)
    d2 = cell('decoder', 'cell2', d2, d1[1])
    feed = d2[1]
    outputs.append(feed)
  return jnp.stack(outputs, axis=1)


@pytest.mark.parametrize('peephole', [False, True])
def test_scanned_autoencoder_equals_per_step_reference_loop(peephole):
  features = 5
  x = random_clips((2, 3, 4, 4, 7))
  module = convlstm.ConvLSTMEncoderDecoder(features, peephole=peephole)
  params = jax.jit(module.init)(init_key(), x)['params']
  if peephole:  # zero-initialised: give them values so that the test sees them
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_map_with_path(
        lambda path, leaf: (rng.standard_normal(leaf.shape, np.float32)
                            if 'peephole' in jax.tree_util.keystr(path) else leaf), params)
  decoded = jax.jit(module.apply)({'params': params}, x)
  assert decoded.shape == (2, 3, 4, 4, features)
  expected = jax.jit(reference_autoencoder, static_argnums=(2, 3))(params, x, features, peephole)
  np.testing.assert_allclose(decoded, expected, atol=1e-5, rtol=0)


def test_autoencoder_output_follows_its_input_at_initialisation():
  # What the smoke model's backbone hands the autoencoder: (N, 2, 2, 2, 32) features of std ~0.8.
  # With PyTorch's default cell init the four cells pass on ~3e-5 of that variation and the
  # model cannot start learning; the default gain must keep it within two orders of magnitude.
  x = jax.nn.relu(random_clips((16, 2, 2, 2, 32)) + 0.5)

  def variation(gain):
    module = convlstm.ConvLSTMEncoderDecoder(6, init_gain=gain)
    decoded = jax.jit(module.apply)(jax.jit(module.init)(init_key(), x[:1]), x)
    return float(np.asarray(decoded).std(0).mean())

  input_variation = float(np.asarray(x).std(0).mean())
  default = variation(convlstm.ConvLSTMEncoderDecoder.init_gain)
  assert default > 1e-2 * input_variation, (default, input_variation)
  assert default > 30 * variation(3 ** -0.5)


# ------------------------------------------------------------------------------ registry


def test_registry_builds_models_by_name():
  assert set(models.MODELS) >= {'r3d18', 'convlstm_ae'}
  model = models.get_model('convlstm_ae', num_classes=4, width_multiplier=0.5)
  assert isinstance(model, convlstm.ConvLSTMAutoencoder)
  assert (model.num_classes, model.width_multiplier) == (4, 0.5)
  assert isinstance(models.get_model('r3d18', num_classes=3), r3d.ResNet3D)


def test_unknown_model_name_lists_known_names():
  with pytest.raises(ValueError, match=r"'resnet50'.*convlstm_ae, di_resnet, di_vgg, fusenet"):
    models.get_model('resnet50')


# ---------------------------------------------------------------- torchvision converter


def torchvision_r3d18_keys() -> set[str]:
  """torchvision `VideoResNet(BasicBlock, [Conv3DSimple] * 4, [2, 2, 2, 2], BasicStem)` keys."""
  bn = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
  keys = {'stem.0.weight', 'fc.weight', 'fc.bias', *(f'stem.1.{s}' for s in bn)}
  for layer in range(1, 5):
    for block in range(2):
      for conv in ('conv1', 'conv2'):
        keys.add(f'layer{layer}.{block}.{conv}.0.weight')
        keys.update(f'layer{layer}.{block}.{conv}.1.{s}' for s in bn)
    if layer > 1:
      keys.add(f'layer{layer}.0.downsample.0.weight')
      keys.update(f'layer{layer}.0.downsample.1.{s}' for s in bn)
  return keys


def random_state_dict(width_multiplier=1.0, num_classes=400, seed=0) -> dict[str, np.ndarray]:
  """A torchvision-layout state_dict with random weights and plausible BN statistics."""
  rng = np.random.default_rng(seed)
  state_dict = {}
  for key, shape in convert.torchvision_r3d18_shapes(num_classes, width_multiplier).items():
    if key.endswith('num_batches_tracked'):
      state_dict[key] = np.array(7, np.int64)
    elif key.endswith('running_var'):
      state_dict[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif len(shape) == 5:
      scale = math.sqrt(1 / math.prod(shape[1:]))  # keeps activations O(1) through 18 layers
      state_dict[key] = scale * rng.standard_normal(shape, np.float32)
    else:
      state_dict[key] = 0.1 * rng.standard_normal(shape, np.float32)
  return state_dict


@pytest.fixture(scope='module')
def full_state_dict():
  """torchvision r3d_18 at full width (400 classes); tests copy what they change."""
  return random_state_dict()


def test_generated_torchvision_keys_are_the_122_of_r3d_18():
  shapes = convert.torchvision_r3d18_shapes()
  assert len(shapes) == 122
  assert set(shapes) == torchvision_r3d18_keys()
  assert shapes['stem.0.weight'] == (64, 3, 3, 7, 7)
  assert shapes['layer1.0.conv1.0.weight'] == (64, 64, 3, 3, 3)
  assert shapes['layer2.0.downsample.0.weight'] == (128, 64, 1, 1, 1)
  assert shapes['layer4.1.conv2.1.running_var'] == (512,)
  assert shapes['fc.weight'] == (400, 512)


def test_converter_places_torch_values_at_transposed_flax_indices(full_state_dict):
  state_dict = {key: value.copy() for key, value in full_state_dict.items()}
  assert len(state_dict) == 122
  state_dict['stem.0.weight'][5, 1, 2, 3, 4] = 123.0  # (out, in, kT, kH, kW)
  state_dict['layer2.0.downsample.0.weight'][17, 42, 0, 0, 0] = -7.0
  state_dict['fc.weight'][7, 300] = 5.0  # (out, in)
  state_dict['layer3.1.conv2.1.weight'][9] = 3.0
  state_dict['layer4.0.downsample.1.running_var'][11] = 2.5
  variables = convert.r3d_variables_from_torchvision(state_dict)
  params, stats = variables['params'], variables['batch_stats']
  assert params['stem']['conv']['kernel'][2, 3, 4, 1, 5] == 123.0  # (kT, kH, kW, in, out)
  assert params['layer2']['block0']['downsample']['conv']['kernel'][0, 0, 0, 42, 17] == -7.0
  assert params['fc']['kernel'][300, 7] == 5.0  # (in, out)
  assert params['layer3']['block1']['bn2']['scale'][9] == 3.0
  assert stats['layer4']['block0']['downsample']['bn']['var'][11] == 2.5
  expected = abstract_variables(r3d.R3D18())
  assert (jax.tree_util.tree_map(jnp.shape, variables)
          == jax.tree_util.tree_map(lambda leaf: leaf.shape, expected))


def test_converted_r3d18_stem_equals_torch_layout_cross_correlation(full_state_dict):
  """Runs the full-width model on a tiny clip; the stem is checked against numpy in torch layout."""
  state_dict = full_state_dict
  variables = convert.r3d_variables_from_torchvision(state_dict)
  clips = np.asarray(random_clips((1, 3, 8, 8, 3)))
  model = r3d.R3D18()
  logits, state = model.apply(variables, clips, train=False, mutable=['intermediates'],
                              capture_intermediates=lambda m, method: m.path == ('stem',))
  assert logits.shape == (1, 400) and np.all(np.isfinite(logits))

  # torch: Conv3d(3, 64, (3, 7, 7), stride (1, 2, 2), padding (1, 3, 3)) -> BatchNorm3d -> ReLU
  weight = state_dict['stem.0.weight']  # (out, in, kT, kH, kW)
  x = np.pad(clips.transpose(0, 4, 1, 2, 3), ((0, 0), (0, 0), (1, 1), (3, 3), (3, 3)))
  out = np.zeros((1, 64, 3, 4, 4), np.float64)
  for t in range(3):
    for h in range(4):
      for w in range(4):
        patch = x[:, :, t:t + 3, 2 * h:2 * h + 7, 2 * w:2 * w + 7]
        out[:, :, t, h, w] = np.einsum('nithw,oithw->no', patch, weight)
  per_channel = lambda name: state_dict[f'stem.1.{name}'][None, :, None, None, None]
  out = ((out - per_channel('running_mean')) / np.sqrt(per_channel('running_var') + 1e-5)
         * per_channel('weight') + per_channel('bias'))
  expected = np.maximum(out, 0).transpose(0, 2, 3, 4, 1)
  np.testing.assert_allclose(state['intermediates']['stem']['__call__'][0], expected, atol=1e-4)


def test_converter_names_missing_unexpected_and_misshapen_keys():
  state_dict = random_state_dict(SMALL)
  del state_dict['layer3.0.downsample.1.running_mean']
  state_dict['layer5.0.conv1.0.weight'] = np.zeros((1,))
  with pytest.raises(KeyError, match=r'layer3\.0\.downsample\.1\.running_mean.*layer5\.0'):
    convert.r3d_variables_from_torchvision(state_dict, width_multiplier=SMALL)

  state_dict = random_state_dict(SMALL)
  state_dict['layer1.1.conv2.0.weight'] = np.zeros((4, 4, 3, 3, 1), np.float32)
  with pytest.raises(ValueError, match=r'layer1\.1\.conv2\.0\.weight: got \(4, 4, 3, 3, 1\), '
                                       r'expected \(4, 4, 3, 3, 3\)'):
    convert.r3d_variables_from_torchvision(state_dict, width_multiplier=SMALL)

  with pytest.raises(ValueError, match=r'stem\.0\.weight: got \(8, '):  # width 1/8 into 1/16
    convert.r3d_variables_from_torchvision(random_state_dict(SMALL * 2), width_multiplier=SMALL)


def test_torchvision_backbone_loads_into_convlstm_variables(small_variables):
  state_dict = random_state_dict(SMALL, num_classes=400)  # fc is ignored
  loaded = convert.with_torchvision_backbone(small_variables, state_dict, width_multiplier=SMALL)
  np.testing.assert_array_equal(loaded['params']['backbone']['stem']['conv']['kernel'],
                                state_dict['stem.0.weight'].transpose(2, 3, 4, 1, 0))
  np.testing.assert_array_equal(
      loaded['batch_stats']['backbone']['layer1']['block0']['bn1']['mean'],
      state_dict['layer1.0.conv1.1.running_mean'])
  assert loaded['params']['autoencoder'] is small_variables['params']['autoencoder']
  assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(small_variables)
  (loss, _), _ = small_train_loss_and_grads(loaded['params'], loaded['batch_stats'],
                                            random_clips())
  assert np.isfinite(loss)
  with pytest.raises(ValueError, match='shapes'):  # full-width weights into the small model
    convert.with_torchvision_backbone(small_variables, random_state_dict(SMALL * 2),
                                      width_multiplier=SMALL * 2)


def test_load_state_dict_file_reads_npz_and_refuses_unknown_formats(tmp_path):
  state_dict = random_state_dict(SMALL)
  np.savez(tmp_path / 'r3d.npz', **state_dict)
  loaded = convert.load_state_dict_file(tmp_path / 'r3d.npz')
  assert loaded.keys() == state_dict.keys()
  np.testing.assert_array_equal(loaded['stem.0.weight'], state_dict['stem.0.weight'])
  with pytest.raises(ValueError, match='Unknown weights format'):
    convert.load_state_dict_file(tmp_path / 'r3d.pkl')


def test_load_state_dict_file_without_torch_says_what_to_do(tmp_path):
  try:
    import torch  # noqa: F401
    pytest.skip('torch is installed')
  except ImportError:
    pass
  with pytest.raises(ImportError, match='needs torch.*npz'):
    convert.load_state_dict_file(tmp_path / 'r3d_18-b3b3357e.pth')


def test_r3d18_equals_torchvision_given_the_same_weights():
  """MODELS.md §1 check; runs only where torch and torchvision are installed."""
  torch = pytest.importorskip('torch')
  torchvision = pytest.importorskip('torchvision')
  torch.manual_seed(0)
  reference = torchvision.models.video.r3d_18(weights=None, num_classes=400).eval()
  with torch.no_grad():  # non-trivial BN statistics, so that the mapping of all four matters
    for module in reference.modules():
      if isinstance(module, torch.nn.BatchNorm3d):
        module.running_mean.uniform_(-0.1, 0.1)
        module.running_var.uniform_(0.5, 1.5)
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.1, 0.1)
  state_dict = {key: value.numpy() for key, value in reference.state_dict().items()}
  variables = convert.r3d_variables_from_torchvision(state_dict)
  clips = np.asarray(random_clips((2, 4, 32, 32, 3)))
  with torch.no_grad():
    expected = reference(torch.from_numpy(clips.transpose(0, 4, 1, 2, 3).copy())).numpy()
  logits = r3d.R3D18().apply(variables, clips, train=False)
  np.testing.assert_allclose(logits, expected, atol=1e-4)


@pytest.mark.parametrize('kernel,strides,padding', [
    ((3, 3, 3), (1, 1, 1), ((1, 1), (1, 1), (1, 1))),
    ((3, 3, 3), (2, 2, 2), ((1, 1), (1, 1), (1, 1))),
    ((3, 7, 7), (1, 2, 2), ((1, 1), (3, 3), (3, 3))),
    ((1, 1, 1), (2, 2, 2), ((0, 0), (0, 0), (0, 0))),
])
def test_frames2d_lowering_equals_xla_conv3d(kernel, strides, padding):
  from mejax.models import conv3d
  x = np.random.default_rng(0).normal(size=(2, 6, 9, 9, 3)).astype(np.float32)
  layers = {low: conv3d.Conv3D(5, kernel, strides, padding, lowering=low)
            for low in conv3d.LOWERINGS}
  params = layers['xla'].init(jax.random.key(0), x)
  outputs, grads = {}, {}
  for low, layer in layers.items():
    outputs[low] = layer.apply(params, x)
    grads[low] = jax.grad(lambda p, v: (layer.apply(p, v) ** 2).sum(), argnums=(0, 1))(params, x)
  np.testing.assert_allclose(outputs['frames2d'], outputs['xla'], rtol=1e-5, atol=1e-5)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4),
                         grads['frames2d'], grads['xla'])


@pytest.mark.parametrize('lowering', ['frames2d', 'im2col', 'auto'])
def test_model_outputs_and_gradients_do_not_depend_on_the_conv_lowering(lowering):
  """Every conv of the ConvLSTM model (backbone, cells, head) follows `conv_lowering`; gradients
  agree to float32 rounding (train-mode BatchNorm on 2 clips amplifies it to ~1e-4 relative)."""
  x = np.random.default_rng(1).normal(size=(2, 4, 16, 16, 3)).astype(np.float32)
  xla = models.get_model('convlstm_ae', width_multiplier=1 / 16)
  other = models.get_model('convlstm_ae', width_multiplier=1 / 16, conv_lowering=lowering)
  variables = jax.jit(lambda k: xla.init(k, x, train=False))(jax.random.key(0, impl='unsafe_rbg'))
  np.testing.assert_allclose(other.apply(variables, x, train=False),
                             xla.apply(variables, x, train=False), rtol=1e-4, atol=1e-5)

  def loss(model, params):
    logits, _ = model.apply({**variables, 'params': params}, x, train=True,
                            mutable=['batch_stats'])
    return jnp.sum(logits * jnp.arange(logits.shape[-1]))

  grads = [jax.grad(functools.partial(loss, m))(variables['params']) for m in (xla, other)]
  for key in ('cell1', 'cell2'):
    for part in ('encoder', 'decoder'):
      ref = grads[0]['autoencoder'][part][key]['conv']['kernel']
      np.testing.assert_allclose(grads[1]['autoencoder'][part][key]['conv']['kernel'], ref,
                                 atol=1e-3 * float(np.abs(ref).max()))
  ref = grads[0]['head']['kernel']
  np.testing.assert_allclose(grads[1]['head']['kernel'], ref,
                             atol=1e-3 * float(np.abs(ref).max()))
