"""STRCN (Xia et al. 2019) and the dynamic-image region CNNs (Le et al. 2020).

Paper-size models are only traced (`jax.eval_shape`); forward passes run at small sizes.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mejax.models import dynamic_cnn, strcn

# Paper sizes (MODELS.md §5): STRCN-A on 30 % of 64 x 48 pixels x 30 frames x RGB, STRCN-G on
# 245 x 300 optical flow.
APPEARANCE_SHAPE = (2, 1, 921, 30, 3)
GEOMETRIC_SHAPE = (2, 1, 245, 300, 2)
REGIONS_SHAPE = (2, 1, 32, 32, 9)  # eyebrows, nose, mouth crops, RGB each


def init_key(seed: int = 0):
  # XLA:CPU compiles threefry slowly for each new kernel shape (seconds per model); the
  # initialiser's random bits need no quality here.
  return jax.random.key(seed, impl='unsafe_rbg')


def count_parameters(tree) -> int:
  return sum(leaf.size for leaf in jax.tree_util.tree_leaves(tree))


def abstract_variables(model, shape):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))


def random_inputs(shape, seed=1) -> np.ndarray:
  return np.random.default_rng(seed).standard_normal(shape, np.float32)


def flat(tree):
  return flax.traverse_util.flatten_dict(tree, sep='/')


def batch_norm_count(features: int) -> int:
  return 2 * features  # scale and offset


# ------------------------------------------------------------------------------------- STRCN


def strcn_parameters(in_channels: int, features: int, num_classes: int, iterations: int = 3,
                     rcls: int = 4) -> int:
  """Table I counted by hand: conv1 + BN, 4 RCLs (1x1 with bias, shared 3x3, one BN per step),
  Dense."""
  conv1 = 5 * 5 * in_channels * features + features + batch_norm_count(features)
  rcl = (features * features + features) + 9 * features * features
  rcl += (iterations + 1) * batch_norm_count(features)
  return conv1 + rcls * rcl + features * num_classes + num_classes


def test_strcn_table_one_feature_sizes():
  # Pools floor (no padding); RCLs keep the size.
  assert strcn.layer_sizes(921, 30, strcn.APPEARANCE_POOL_WINDOWS) == [
      ('conv1', (917, 26)), ('pool1', (229, 26)), ('pool2', (57, 26)), ('pool3', (14, 6)),
      ('pool4', (7, 3))]
  assert strcn.layer_sizes(245, 300, strcn.GEOMETRIC_POOL_WINDOWS) == [
      ('conv1', (241, 296)), ('pool1', (60, 74)), ('pool2', (15, 18)), ('pool3', (3, 4)),
      ('pool4', (1, 2))]


@pytest.mark.parametrize('variant, shape', [('appearance', APPEARANCE_SHAPE),
                                            ('geometric', GEOMETRIC_SHAPE)])
def test_strcn_paper_size_shapes_and_parameters(variant, shape):
  model = strcn.STRCN(num_classes=4, variant=variant)
  variables = abstract_variables(model, shape)
  assert count_parameters(variables['params']) == strcn_parameters(shape[-1], 64, 4)
  # Spelt out, for 4 classes (CASME II, SAMM): A 171,396, G 169,796.
  assert count_parameters(variables['params']) == {'appearance': 171_396,
                                                   'geometric': 169_796}[variant]
  logits = jax.eval_shape(lambda v: model.apply(v, jnp.zeros(shape), train=False), variables)
  assert logits.shape == (2, 4) and logits.dtype == jnp.float32

  # The RCL feature maps have Table I's sizes.
  def intermediates(v):
    _, state = model.apply(v, jnp.zeros(shape), train=False,
                           capture_intermediates=lambda mdl, _: isinstance(mdl, strcn.RCL),
                           mutable=['intermediates'])
    return state['intermediates']

  captured = jax.eval_shape(intermediates, variables)
  sizes = dict(strcn.layer_sizes(shape[2], shape[3], model.windows()))
  for index in range(4):
    out = captured[f'rcl{index + 2}']['__call__'][0]
    assert out.shape == (2, *sizes[f'pool{index + 1}'], 64)


def test_rcl_shares_one_recurrent_kernel_and_has_a_batch_norm_per_step():
  for iterations in (1, 3, 5):
    variables = abstract_variables(strcn.RCL(8, iterations=iterations), (2, 6, 6, 4))
    params = flat(variables['params'])
    assert params['recurrent/kernel'].shape == (3, 3, 8, 8)
    assert 'recurrent/bias' not in params
    assert params['feed_forward/kernel'].shape == (1, 1, 4, 8)
    assert params['feed_forward/bias'].shape == (8,)
    assert sorted({k.split('/')[0] for k in params if k.startswith('bn')}) == [
        f'bn{n}' for n in range(iterations + 1)]
  shared = abstract_variables(strcn.RCL(8, share_batch_norm=True), (2, 6, 6, 4))
  assert sorted(shared['params']) == ['bn', 'feed_forward', 'recurrent']


def rcl_reference(params, stats, u, iterations, epsilon=1e-5):
  """Eqs. (6)-(7) written out with lax convolutions and running-average BatchNorm."""
  def conv(x, kernel, padding):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                        precision='highest')

  def norm(z, step):
    name = f'bn{step}'
    scale, offset = params[name]['scale'], params[name]['bias']
    mean, var = stats[name]['mean'], stats[name]['var']
    return (z - mean) / jnp.sqrt(var + epsilon) * scale + offset

  feed_forward = conv(u, params['feed_forward']['kernel'], 'VALID') + params['feed_forward']['bias']
  v = jnp.maximum(norm(feed_forward, 0), 0)
  for step in range(1, iterations + 1):
    z = feed_forward + conv(v, params['recurrent']['kernel'], ((1, 1), (1, 1)))
    v = jnp.maximum(norm(z, step), 0)
  return v


def test_rcl_matches_equations_six_and_seven():
  rng = np.random.default_rng(0)
  model = strcn.RCL(6, iterations=3)
  u = random_inputs((2, 7, 5, 4))
  variables = model.init(init_key(), u, train=False)
  # Random BN parameters and statistics, so that a BN applied at the wrong step shows.
  randomise = lambda tree: jax.tree_util.tree_map(
      lambda a: jnp.asarray(rng.uniform(0.5, 1.5, a.shape), a.dtype), tree)
  params = dict(variables['params'])
  for step in range(4):
    params[f'bn{step}'] = randomise(params[f'bn{step}'])
  stats = randomise(variables['batch_stats'])
  with jax.default_matmul_precision('highest'):
    got = model.apply({'params': params, 'batch_stats': stats}, u, train=False)
  want = rcl_reference(params, stats, u, 3)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)
  assert float(jnp.abs(want).max()) > 0


def small_appearance_model(**kwargs):
  # 132 pixels x 12 frames is the smallest input Table I's STRCN-A windows accept.
  return strcn.STRCN(num_classes=3, features=8, variant='appearance', **kwargs), (2, 1, 132, 12, 3)


def test_strcn_train_step_updates_batch_stats_and_trains_the_recurrent_kernel():
  model, shape = small_appearance_model()
  x = random_inputs(shape)
  variables = model.init(init_key(), x, train=False)
  logits, updates = model.apply(variables, x, train=True, mutable=['batch_stats'])
  assert logits.shape == (2, 3) and logits.dtype == jnp.float32
  assert np.isfinite(np.asarray(logits)).all()
  before, after = flat(variables['batch_stats']), flat(updates['batch_stats'])
  assert before.keys() == after.keys()
  for key in before:  # every BN, including each RCL step's, saw a batch
    assert not np.allclose(before[key], after[key]), key

  def loss(params):
    out, _ = model.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                         train=True, mutable=['batch_stats'])
    return jnp.sum(out * jnp.arange(3.0))

  grads = flat(jax.jit(jax.grad(loss))(variables['params']))  # jit: 2x faster than eager here
  for index in range(2, 6):
    assert float(jnp.abs(grads[f'rcl{index}/recurrent/kernel']).max()) > 0
  # Eval mode is deterministic and uses the running statistics, not the batch's.
  eval_logits = model.apply(variables, x, train=False)
  np.testing.assert_array_equal(eval_logits, model.apply(variables, x, train=False))
  assert not np.allclose(eval_logits, logits)


def test_strcn_shared_batch_norm_and_custom_windows():
  model = strcn.STRCN(features=4, variant='geometric', share_batch_norm=True,
                      pool_windows=((2, 2), (2, 2), (2, 2), (2, 2)))
  x = random_inputs((2, 1, 36, 36, 2))
  variables = model.init(init_key(), x, train=False)
  assert sorted(variables['params']['rcl5']) == ['bn', 'feed_forward', 'recurrent']
  logits, _ = model.apply(variables, x, train=True, mutable=['batch_stats'])
  assert logits.shape == (2, 3)
  assert strcn.STRCNGeometric().windows() == strcn.GEOMETRIC_POOL_WINDOWS
  assert strcn.STRCNAppearance().windows() == strcn.APPEARANCE_POOL_WINDOWS


@pytest.mark.parametrize('model, shape, message', [
    # Table I's G windows need >= 132 x 132: a 64 x 64 flow field dies at Pool3 (3 x 3 map).
    (strcn.STRCN(variant='geometric'), (2, 1, 64, 64, 2), r'pool3: window 4x4 .* 3x3 input'),
    (strcn.STRCN(), (2, 1, 131, 30, 3), r'pool4: window 2x2 .* 1x6 input'),
    (strcn.STRCN(), (2, 1, 921, 7, 3), r'pool3: window 4x4 .* 57x3 input'),
    (strcn.STRCN(), (2, 1, 4, 30, 3), r'conv1: kernel 5x5 larger than its 4x30 input'),
    (strcn.STRCN(), (2, 30, 921, 1, 3), r'one 2D input per sample'),
    (strcn.STRCN(variant='optical'), (2, 1, 245, 300, 2), r'unknown variant'),
    (strcn.STRCN(pool_windows=((4, 0),) * 4), (2, 1, 921, 30, 3), r'must be positive'),
])
def test_strcn_bad_sizes_fail_at_init(model, shape, message):
  with pytest.raises(ValueError, match=message):
    abstract_variables(model, shape)


# ---------------------------------------------------------------------------- dynamic CNNs


def vgg_parameters(in_channels, widths, convs_per_block=2):
  total, previous = 0, in_channels
  for width in widths:
    for _ in range(convs_per_block):
      total += 9 * previous * width + batch_norm_count(width)  # no conv bias with BN
      previous = width
  return total


def resnet_parameters(in_channels, widths, stem_kernel=3):
  total = stem_kernel ** 2 * in_channels * widths[0] + batch_norm_count(widths[0])
  previous = widths[0]
  for width in widths:
    for _ in range(2):
      total += 9 * previous * width + 9 * width * width + 2 * batch_norm_count(width)
      if previous != width:  # projection shortcut
        total += previous * width + batch_norm_count(width)
      previous = width
  return total


@pytest.mark.parametrize('fusion', ['shared', 'channels'])
def test_region_cnn_parameter_counts(fusion):
  widths = dynamic_cnn.DEFAULT_WIDTHS
  in_channels = 3 if fusion == 'shared' else 9
  features = widths[-1] * (3 if fusion == 'shared' else 1)
  head = features * 3 + 3
  vgg = abstract_variables(dynamic_cnn.VGGStyle(region_fusion=fusion), REGIONS_SHAPE)
  resnet = abstract_variables(dynamic_cnn.ResNetStyle(region_fusion=fusion), REGIONS_SHAPE)
  assert count_parameters(vgg['params']) == vgg_parameters(in_channels, widths) + head
  assert count_parameters(resnet['params']) == resnet_parameters(in_channels, widths) + head
  expected = {'shared': (1_175_523, 2_797_347), 'channels': (1_175_715, 2_797_539)}[fusion]
  assert (count_parameters(vgg['params']), count_parameters(resnet['params'])) == expected
  imagenet = abstract_variables(dynamic_cnn.ResNetStyle(region_fusion=fusion, stem='imagenet'),
                                REGIONS_SHAPE)
  assert count_parameters(imagenet['params']) == resnet_parameters(in_channels, widths, 7) + head


@pytest.mark.parametrize('cls', [dynamic_cnn.VGGStyle, dynamic_cnn.ResNetStyle])
def test_shared_fusion_runs_one_cnn_per_region_and_concatenates(cls):
  model = cls(num_classes=4, width_multiplier=1 / 8)  # widths 4, 8, 16, 32
  x = random_inputs((3, 1, 16, 16, 9))
  variables = model.init(init_key(), x, train=False)
  logits = model.apply(variables, x, train=False)
  assert logits.shape == (3, 4) and logits.dtype == jnp.float32
  # Rebuild it by hand: the backbone on each region's RGB crop, features concatenated in
  # region order (eyebrows, nose, mouth), then the Dense.
  backbone = (dynamic_cnn.VGGBackbone if cls is dynamic_cnn.VGGStyle
              else dynamic_cnn.ResNetBackbone)(widths=(4, 8, 16, 32))
  backbone_variables = {'params': variables['params']['backbone'],
                        'batch_stats': variables['batch_stats']['backbone']}
  features = [backbone.apply(backbone_variables, x[:, 0, ..., 3 * r:3 * r + 3], train=False)
              for r in range(3)]
  assert features[0].shape == (3, 32)
  dense = variables['params']['classifier']
  want = jnp.concatenate(features, axis=-1) @ dense['kernel'] + dense['bias']
  np.testing.assert_allclose(np.asarray(logits), np.asarray(want), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('cls', [dynamic_cnn.VGGStyle, dynamic_cnn.ResNetStyle])
@pytest.mark.parametrize('fusion', ['shared', 'channels'])
def test_region_cnn_train_and_eval(cls, fusion):
  model = cls(width_multiplier=1 / 8, region_fusion=fusion, dropout_rate=0.5)
  x = random_inputs((2, 1, 16, 16, 9))
  variables = model.init(init_key(), x, train=False)
  first_conv = ('backbone/block1_conv1/kernel' if cls is dynamic_cnn.VGGStyle
                else 'backbone/stem_conv/kernel')
  assert flat(variables['params'])[first_conv].shape[2] == (3 if fusion == 'shared' else 9)

  def train_logits(seed):
    return model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(seed)},
                       mutable=['batch_stats'])

  logits, updates = train_logits(0)
  assert logits.shape == (2, 3) and np.isfinite(np.asarray(logits)).all()
  before, after = flat(variables['batch_stats']), flat(updates['batch_stats'])
  assert before.keys() == after.keys()
  for key in before:
    assert not np.allclose(before[key], after[key]), key
  assert not np.allclose(logits, train_logits(1)[0])  # dropout is on in training
  eval_logits = model.apply(variables, x, train=False)  # ... and off in evaluation
  np.testing.assert_array_equal(eval_logits, model.apply(variables, x, train=False))


def test_resnet_imagenet_stem_runs_on_small_crops():
  model = dynamic_cnn.ResNetStyle(width_multiplier=1 / 8, stem='imagenet')
  x = random_inputs((2, 1, 8, 8, 9))
  variables = model.init(init_key(), x, train=False)
  assert model.apply(variables, x, train=False).shape == (2, 3)


@pytest.mark.parametrize('model, shape, message', [
    (dynamic_cnn.VGGStyle(), (2, 1, 8, 32, 9),
     r'block4 max-pool: 2x2 window larger than its 1x4 input.* at least 16x16'),
    (dynamic_cnn.VGGStyle(widths=(8, 16)), (2, 1, 32, 3, 9), r'block2 max-pool: .* 16x1 input'),
    (dynamic_cnn.VGGStyle(), (2, 1, 32, 32, 8), r'8 input channels do not split into 3'),
    (dynamic_cnn.ResNetStyle(num_regions=2), (2, 1, 32, 32, 9), r'9 input channels'),
    (dynamic_cnn.ResNetStyle(), (2, 4, 32, 32, 9), r'one dynamic image per sample'),
    (dynamic_cnn.ResNetStyle(region_fusion='late'), REGIONS_SHAPE, r'unknown region_fusion'),
    (dynamic_cnn.ResNetStyle(stem='deep'), REGIONS_SHAPE, r'unknown stem'),
    (dynamic_cnn.ResNetStyle(stage_sizes=(2, 2)), REGIONS_SHAPE, r'2 stage sizes for 4 widths'),
])
def test_region_cnn_bad_sizes_fail_at_init(model, shape, message):
  with pytest.raises(ValueError, match=message):
    abstract_variables(model, shape)
