"""MicroExpSTCNN / MicroExpFuseNet (Reddy et al. 2019) and Talluri et al. 2022's Model-A,
Split-Model, Model-B, Model-C: the papers' layer tables, the shared interface, bad sizes.

Paper-size models are only traced (`jax.eval_shape`): MicroExpFuseNet holds 177 M parameters.
Forward passes run on tiny clips.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mejax.models import cnn3d, stcnn


def init_key(seed: int = 0):
  # XLA:CPU compiles threefry for rank-5 kernels slowly; initial weights need no quality here.
  return jax.random.key(seed, impl='unsafe_rbg')


def count(tree) -> int:
  return sum(leaf.size for leaf in jax.tree_util.tree_leaves(tree))


def abstract_variables(model, shape):
  return jax.eval_shape(lambda: model.init(init_key(), jnp.zeros(shape), train=False))


def traced_intermediates(model, shape):
  """(abstract variables, abstract logits, every submodule's output shape and the sown vectors),
  all from `jax.eval_shape`: nothing of paper size is allocated."""
  variables = abstract_variables(model, shape)

  def forward(variables):
    return model.apply(variables, jnp.zeros(shape), train=False, capture_intermediates=True,
                       mutable=['intermediates'])

  logits, state = jax.eval_shape(forward, variables)
  return variables, logits, state['intermediates']


def output_shape(intermediates, *path):
  """Per-example output shape of the submodule at `path` (captured `__call__` output)."""
  node = intermediates
  for key in path:
    node = node[key]
  return tuple(node['__call__'][0].shape[1:])


def sown(intermediates, *path):
  node = intermediates
  for key in path:
    node = node[key]
  return tuple(node[0].shape[1:])


def clips(shape, seed=1) -> np.ndarray:
  # numpy, not jax.random: new rank-5 threefry shapes cost seconds of XLA:CPU compile each.
  return np.random.default_rng(seed).standard_normal(shape, np.float32)


# ------------------------------------------------------------------------- paper layer tables


@pytest.mark.parametrize('frames, conv, pool, features, parameters', [
    (96, (82, 62, 62, 32), (27, 20, 20, 32), 345_600, 44_241_667),  # CAS(ME)^2, Table I
    (18, (4, 62, 62, 32), (1, 20, 20, 32), 12_800, 1_643_267),  # SMIC
])
def test_stcnn_matches_table_1(frames, conv, pool, features, parameters):
  variables, logits, intermediates = traced_intermediates(stcnn.STCNN(), (2, frames, 64, 64, 1))
  assert output_shape(intermediates, 'conv1') == conv
  assert output_shape(intermediates, 'pool1') == pool
  assert output_shape(intermediates, 'dropout1') == pool
  assert sown(intermediates, 'features') == (features,)
  assert output_shape(intermediates, 'dense1') == (128,)
  assert output_shape(intermediates, 'dropout2') == (128,)
  assert count(variables) == parameters
  assert set(variables) == {'params'}  # no BatchNorm, and init keeps no intermediates
  assert (logits.shape, logits.dtype) == ((2, 3), jnp.float32)


def test_model_b_is_stcnn():
  assert cnn3d.ModelB is stcnn.STCNN


@pytest.mark.parametrize('fusion, fused, parameters', [
    ('intermediate', 172_800, 177_088_515),  # Table II
    ('late', 256, 177_221_123),  # Table III
])
def test_fusenet_matches_tables_2_and_3(fusion, fused, parameters):
  model = stcnn.FuseNet(fusion=fusion)
  variables, logits, intermediates = traced_intermediates(model, (2, 96, 32, 32, 2))
  for region in ('eyes', 'nose_mouth'):
    assert output_shape(intermediates, region, 'conv1') == (82, 30, 30, 32)
    assert output_shape(intermediates, region, 'pool1') == (27, 10, 10, 32)
    assert output_shape(intermediates, region, 'dropout1') == (27, 10, 10, 32)
    assert sown(intermediates, region, 'features') == (86_400,)
  assert sown(intermediates, 'fused') == (fused,)
  assert count(variables) == parameters
  params = variables['params']
  if fusion == 'late':
    assert params['eyes']['dense1']['kernel'].shape == (86_400, 1024)
    assert params['nose_mouth']['dense2']['kernel'].shape == (1024, 128)
    assert set(params) == {'eyes', 'nose_mouth', 'dense3'}
  else:
    assert params['dense1']['kernel'].shape == (172_800, 1024)
    assert set(params) == {'eyes', 'nose_mouth', 'dense1', 'dense2', 'dense3'}
  assert params['dense3']['kernel'].shape == (fused if fusion == 'late' else 128, 3)
  assert logits.shape == (2, 3)


def test_model_a_matches_table_2():
  variables, logits, intermediates = traced_intermediates(cnn3d.ModelA(), (2, 36, 128, 128, 1))
  assert output_shape(intermediates, 'conv1') == (36, 128, 128, 16)
  assert output_shape(intermediates, 'bn1') == (36, 128, 128, 16)
  assert output_shape(intermediates, 'pool1') == (12, 42, 42, 16)
  assert output_shape(intermediates, 'conv2') == (12, 42, 42, 16)
  assert output_shape(intermediates, 'pool2') == (4, 14, 14, 16)
  assert output_shape(intermediates, 'dropout1') == (12, 42, 42, 16)
  assert output_shape(intermediates, 'dropout2') == (4, 14, 14, 16)
  assert sown(intermediates, 'features') == (12_544,)
  assert output_shape(intermediates, 'dense1') == (128,)
  assert output_shape(intermediates, 'dropout3') == (128,)
  # conv 448 + 6,928, BN 2 x 32, dense 12,544 x 128 + 128, head 387.
  assert count(variables['params']) == 1_613_587
  assert count(variables['batch_stats']) == 64
  assert logits.shape == (2, 3)


@pytest.mark.parametrize('frames, pool3, features', [(26, (1, 5, 5, 16), 400),
                                                     (36, (2, 5, 5, 16), 800)])
def test_split_model_third_block_pools_with_same_padding(frames, pool3, features):
  model = cnn3d.SplitModel()
  assert model.third_pool_padding == 'SAME'
  variables, _, intermediates = traced_intermediates(model, (2, frames, 128, 128, 1))
  assert output_shape(intermediates, 'pool3') == pool3
  assert sown(intermediates, 'features') == (features,)
  assert {'conv3', 'bn3', 'dense1', 'dense2'} <= set(variables['params'])


def test_split_model_with_valid_third_pool_collapses_smic_depth():
  with pytest.raises(ValueError, match='pool3: pooling window 3 larger than the 2 input frames'):
    abstract_variables(cnn3d.SplitModel(third_pool_padding='VALID'), (1, 26, 128, 128, 1))
  # Deep enough clips keep working with VALID: 36 -> 12 -> 4 -> 1.
  _, _, intermediates = traced_intermediates(cnn3d.SplitModel(third_pool_padding='VALID'),
                                             (1, 36, 128, 128, 1))
  assert output_shape(intermediates, 'pool3') == (1, 4, 4, 16)


@pytest.mark.parametrize('num_convs, pools, parameters', [
    (1, ((12, 42, 42, 32), (4, 14, 14, 32)), 3_212_739),
    (2, ((12, 42, 42, 32), (4, 14, 14, 32)), 3_240_483),
])
def test_model_c_assumed_sizes(num_convs, pools, parameters):
  variables, _, intermediates = traced_intermediates(cnn3d.ModelC(num_convs=num_convs),
                                                     (2, 36, 128, 128, 1))
  assert output_shape(intermediates, 'conv1') == (36, 128, 128, 32)
  assert (output_shape(intermediates, 'pool1'), output_shape(intermediates, 'pool2')) == pools
  assert output_shape(intermediates, f'dropout{num_convs}') == (4, 14, 14, 32)
  assert output_shape(intermediates, f'dropout{num_convs + 1}') == (128,)
  assert sown(intermediates, 'features') == (25_088,)
  assert ('conv2' in variables['params']) == (num_convs == 2)
  assert count(variables['params']) == parameters


# ------------------------------------------------------------------ interface on tiny clips

TINY = {
    'stcnn': (stcnn.STCNN, {}, (2, 17, 8, 8, 1)),
    'fusenet_intermediate': (stcnn.FuseNet, {'fusion': 'intermediate'}, (2, 17, 8, 8, 2)),
    'fusenet_late': (stcnn.FuseNet, {'fusion': 'late', 'dense_activation': 'linear'},
                     (2, 17, 8, 8, 2)),
    'model_a': (cnn3d.ModelA, {}, (2, 9, 9, 9, 1)),
    'split_model': (cnn3d.SplitModel, {}, (2, 9, 9, 9, 1)),
    'model_c': (cnn3d.ModelC, {}, (2, 9, 9, 9, 3)),
    'model_c_two_convs': (cnn3d.ModelC, {'num_convs': 2}, (2, 9, 9, 9, 1)),
}
WITH_BATCH_NORM = {'model_a', 'split_model', 'model_c', 'model_c_two_convs'}


@pytest.mark.parametrize('name', sorted(TINY))
def test_forward_train_and_eval(name):
  module_class, kwargs, shape = TINY[name]
  model = module_class(**kwargs)
  x = clips(shape)
  variables = jax.jit(lambda x: model.init(init_key(), x, train=False))(x)
  assert set(variables) == ({'params', 'batch_stats'} if name in WITH_BATCH_NORM else {'params'})
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(variables))

  @jax.jit
  def train_step(variables, key):
    return model.apply(variables, x, train=True, rngs={'dropout': key}, mutable=['batch_stats'])

  @jax.jit
  def evaluate(variables):
    return model.apply(variables, x, train=False)

  logits_a, state = train_step(variables, init_key(1))
  logits_b, _ = train_step(variables, init_key(2))
  logits_a_again, _ = train_step(variables, init_key(1))
  for logits in (logits_a, logits_b):
    assert (logits.shape, logits.dtype) == ((2, 3), jnp.float32)
    assert np.all(np.isfinite(logits))
  assert not np.allclose(logits_a, logits_b), 'dropout keys made no difference'
  np.testing.assert_array_equal(logits_a, logits_a_again)

  eval_logits = evaluate(variables)
  assert (eval_logits.shape, eval_logits.dtype) == ((2, 3), jnp.float32)
  assert np.all(np.isfinite(eval_logits))
  np.testing.assert_array_equal(eval_logits, evaluate(variables))

  if name in WITH_BATCH_NORM:
    for layer, stats in state['batch_stats'].items():
      before = variables['batch_stats'][layer]
      assert not np.allclose(stats['mean'], before['mean']), f'{layer} mean not updated'
      assert not np.allclose(stats['var'], before['var']), f'{layer} var not updated'
  else:
    assert not state  # nothing to update


def test_fusenet_dense_activation_linear_differs_from_relu():
  _, kwargs, shape = TINY['fusenet_intermediate']
  relu_model = stcnn.FuseNet(**kwargs)
  linear_model = stcnn.FuseNet(**kwargs, dense_activation='linear')
  x = clips(shape)
  variables = jax.jit(lambda x: relu_model.init(init_key(), x, train=False))(x)
  # Same parameter tree: the activation adds no parameters.
  assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(
      abstract_variables(linear_model, shape))
  relu = relu_model.apply(variables, x, train=False)
  linear = linear_model.apply(variables, x, train=False)
  assert not np.allclose(relu, linear)


def test_fusenet_branches_read_their_own_channel():
  model = stcnn.FuseNet(fusion='late')
  x = clips(TINY['fusenet_late'][2])
  variables = jax.jit(lambda x: model.init(init_key(), x, train=False))(x)
  _, state = model.apply(variables, x, train=False, mutable=['intermediates'])
  changed = x.copy()
  changed[..., 1] += 1.0  # only the nose-mouth region changes
  _, changed_state = model.apply(variables, changed, train=False, mutable=['intermediates'])
  eyes, nose_mouth = (state['intermediates'][r]['features'][0] for r in ('eyes', 'nose_mouth'))
  np.testing.assert_array_equal(changed_state['intermediates']['eyes']['features'][0], eyes)
  assert not np.allclose(changed_state['intermediates']['nose_mouth']['features'][0], nose_mouth)


@pytest.mark.parametrize('model', [stcnn.STCNN(), stcnn.FuseNet(), cnn3d.ModelA(),
                                   cnn3d.ModelC()], ids=lambda m: type(m).__name__)
def test_bfloat16_computation_keeps_float32_parameters_and_logits(model):
  model = model.clone(dtype=jnp.bfloat16)
  shape = {'FuseNet': (2, 17, 8, 8, 2)}.get(type(model).__name__, (2, 17, 9, 9, 1))
  variables = abstract_variables(model, shape)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(variables))
  logits = jax.eval_shape(lambda v: model.apply(v, jnp.zeros(shape), train=False), variables)
  assert logits.dtype == jnp.float32


# -------------------------------------------------------------------------------- bad sizes


@pytest.mark.parametrize('model, shape, message', [
    (stcnn.STCNN(), (1, 12, 64, 64, 1), 'conv1: temporal kernel 15 larger than the 12 input '
     'frames'),
    (stcnn.STCNN(), (1, 16, 64, 64, 1), 'pool1: pooling window 3 larger than the 2 input frames'),
    (stcnn.STCNN(), (1, 96, 2, 64, 1), 'conv1: vertical kernel 3 larger than the 2 input rows'),
    (stcnn.FuseNet(), (1, 14, 32, 32, 2), 'eyes/conv1: temporal kernel 15 larger than the 14 '
     'input frames'),
    (stcnn.FuseNet(), (1, 96, 32, 4, 2), 'eyes/pool1: pooling window 3 larger than the 2 input '
     'columns'),
    (stcnn.FuseNet(), (1, 96, 32, 32, 1), 'FuseNet expects 2 grey regions'),
    (stcnn.FuseNet(fusion='early'), (1, 96, 32, 32, 2), 'fusion must be one of'),
    (stcnn.FuseNet(dense_activation='tanh'), (1, 96, 32, 32, 2), 'dense_activation must be'),
    (cnn3d.ModelA(), (1, 8, 128, 128, 1), 'pool2: pooling window 3 larger than the 2 input '
     'frames'),
    (cnn3d.ModelA(), (1, 36, 2, 128, 1), 'pool1: pooling window 3 larger than the 2 input rows'),
    (cnn3d.SplitModel(), (1, 8, 128, 128, 1), 'pool2: pooling window 3 larger'),
    (cnn3d.ModelC(), (1, 36, 128, 8, 1), 'pool2: pooling window 3 larger than the 2 input '
     'columns'),
    (cnn3d.ModelC(num_convs=3), (1, 36, 128, 128, 1), 'num_convs must be 1 or 2'),
    (cnn3d.ModelA(), (36, 128, 128, 1), r'ModelA expects \(N, T, H, W, C\) clips'),
], ids=lambda v: ('x'.join(map(str, v)) if isinstance(v, tuple) else
                  '' if isinstance(v, str) else type(v).__name__))
def test_bad_sizes_fail_at_init_naming_the_layer(model, shape, message):
  with pytest.raises(ValueError, match=message):
    abstract_variables(model, shape)


# ------------------------------------------------------------------------------ initialisers


def test_initialisers_follow_the_keras_code():
  x = clips(TINY['stcnn'][2])
  params = jax.jit(lambda x: stcnn.STCNN().init(init_key(), x, train=False))(x)['params']
  # STCNN's Dense layers: Keras `init='normal'`, N(0, 0.05).
  assert np.std(params['dense1']['kernel']) == pytest.approx(0.05, rel=0.1)
  assert not np.any(params['dense1']['bias'])
  # Conv: Keras glorot_uniform, |w| <= sqrt(6 / (fan_in + fan_out)), fans include the 135 taps.
  limit = np.sqrt(6 / (135 * 1 + 135 * 32))
  kernel = np.abs(params['conv1']['kernel'])
  assert kernel.max() <= limit and kernel.max() > 0.9 * limit

  x = clips(TINY['model_a'][2])
  params = jax.jit(lambda x: cnn3d.ModelA().init(init_key(), x, train=False))(x)['params']
  # Model-A's convolutions: He-normal, std sqrt(2 / fan_in), fan_in = 27 taps x 16 channels.
  assert np.std(params['conv2']['kernel']) == pytest.approx(np.sqrt(2 / 432), rel=0.1)
  # Dense: Keras default glorot_uniform.
  dense = params['dense1']['kernel']
  assert np.abs(dense).max() <= np.sqrt(6 / sum(dense.shape))
