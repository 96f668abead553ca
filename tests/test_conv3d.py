"""Every 3D convolution lowering computes what XLA's own 3D convolution computes.

Forward outputs and gradients (w.r.t. input and kernel) of each lowering in `conv3d.LOWERINGS`
are compared with 'xla' for every convolution shape R3D-18 uses, at odd sizes, and for a whole
small-width R3D-18 in training mode (logits, BatchNorm statistics, parameter gradients).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mejax.models import conv3d, r3d

OTHER_LOWERINGS = [low for low in conv3d.LOWERINGS if low != 'xla']

# (kernel, strides, padding) of every R3D-18 convolution, plus an asymmetric padding.
CONV_SHAPES = {
    'stem': ((3, 7, 7), (1, 2, 2), ((1, 1), (3, 3), (3, 3))),
    '3x3x3': ((3, 3, 3), (1, 1, 1), ((1, 1), (1, 1), (1, 1))),
    '3x3x3/2': ((3, 3, 3), (2, 2, 2), ((1, 1), (1, 1), (1, 1))),
    '1x1x1/2': ((1, 1, 1), (2, 2, 2), ((0, 0), (0, 0), (0, 0))),
    'asymmetric': ((2, 3, 1), (1, 2, 1), ((0, 1), (2, 0), (1, 1))),
}


@functools.lru_cache(maxsize=None)
def _conv_results(name, lowering, input_shape, features):
  kernel_size, strides, padding = CONV_SHAPES[name]
  x = np.random.default_rng(0).normal(size=input_shape).astype(np.float32)
  layer = conv3d.Conv3D(features, kernel_size, strides, padding, lowering=lowering)
  params = conv3d.Conv3D(features, kernel_size, strides, padding).init(jax.random.key(0), x)
  cotangent = np.random.default_rng(1).normal(
      size=jax.eval_shape(layer.apply, params, x).shape).astype(np.float32)

  def loss(p, v):
    return jnp.sum(layer.apply(p, v) * cotangent)

  y = jax.jit(layer.apply)(params, x)
  grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
  return np.asarray(y), jax.tree_util.tree_map(np.asarray, grads)


@pytest.mark.parametrize('lowering', OTHER_LOWERINGS)
@pytest.mark.parametrize('name', list(CONV_SHAPES))
def test_lowering_matches_xla_forward_and_gradients(name, lowering, input_shape=(2, 5, 9, 7, 4),
                                                    features=6):
  y_ref, (dparams_ref, dx_ref) = _conv_results(name, 'xla', input_shape, features)
  y, (dparams, dx) = _conv_results(name, lowering, input_shape, features)
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(dparams['params']['kernel'], dparams_ref['params']['kernel'],
                             rtol=1e-4, atol=1e-4)


def test_auto_picks_per_layer_on_cpu_and_xla_elsewhere():
  # R3D-18 at batch 8, 12x64x64 clips: the layer input shapes.
  assert conv3d.auto_lowering((3, 7, 7), (1, 2, 2), (8, 12, 64, 64, 3), 'cpu') == 'frames2d_vjp'
  assert conv3d.auto_lowering((3, 3, 3), (1, 1, 1), (8, 12, 32, 32, 64), 'cpu') == 'frames2d_vjp'
  assert conv3d.auto_lowering((3, 3, 3), (1, 1, 1), (8, 6, 16, 16, 128), 'cpu') == 'frames2d_vjp'
  assert conv3d.auto_lowering((3, 3, 3), (1, 1, 1), (8, 3, 8, 8, 256), 'cpu') == 'frames2d'
  assert conv3d.auto_lowering((3, 3, 3), (1, 1, 1), (8, 2, 4, 4, 512), 'cpu') == 'im2col'
  assert conv3d.auto_lowering((3, 3, 3), (2, 2, 2), (8, 12, 32, 32, 64), 'cpu') == 'im2col'
  assert conv3d.auto_lowering((1, 1, 1), (2, 2, 2), (8, 12, 32, 32, 64), 'cpu') == 'im2col'
  for backend in ('gpu', 'cuda', 'rocm', 'tpu'):
    assert conv3d.auto_lowering((1, 1, 1), (2, 2, 2), (8, 12, 32, 32, 64), backend) == 'xla'


def test_unknown_lowering_is_refused():
  x = np.zeros((1, 3, 4, 4, 2), np.float32)
  with pytest.raises(ValueError, match='Unknown conv lowering'):
    conv3d.Conv3D(2, (1, 1, 1), lowering='winograd').init(jax.random.key(0), x)


def _r3d_train_results(lowering, variables, x, labels):
  model = r3d.R3D18(num_classes=3, width_multiplier=1 / 16, conv_lowering=lowering)

  def loss_fn(params):
    logits, updated = model.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                                  train=True, mutable=['batch_stats'])
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1).mean()
    return ce, (logits, updated['batch_stats'])

  (_, (logits, stats)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
      variables['params'])
  return logits, stats, grads


def test_r3d18_logits_statistics_and_gradients_do_not_depend_on_the_lowering():
  x = np.random.default_rng(2).normal(size=(2, 5, 17, 15, 3)).astype(np.float32)
  labels = jnp.array([0, 2])
  model = r3d.R3D18(num_classes=3, width_multiplier=1 / 16)
  variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
  logits_ref, stats_ref, grads_ref = _r3d_train_results('xla', variables, x, labels)
  for lowering in OTHER_LOWERINGS:
    logits, stats, grads = _r3d_train_results(lowering, variables, x, labels)
    np.testing.assert_allclose(logits, logits_ref, rtol=1e-4, atol=1e-5, err_msg=lowering)
    jax.tree_util.tree_map(
        functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-5, err_msg=lowering),
        stats, stats_ref)
    # Gradients are relative to the largest of their leaf (BatchNorm makes some leaves ~0).
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * max(np.abs(b).max(),
                                                                               1e-3),
                                                err_msg=lowering),
        grads, grads_ref)


@pytest.mark.parametrize("lowering", conv3d.LOWERINGS)
def test_pointwise_convolutions_of_a_fold_sharded_sweep_equal_each_folds_own(lowering):
  """A 1x1x1 stride-1 convolution vmapped over 8 folds whose axis is sharded over 8 devices (a
  multi-device sweep) equals every fold's convolution computed alone. XLA's own convolution
  fails this on CPU (jax 0.10.2); `conv3d` computes pointwise kernels as a matmul."""
  from mejax import sharding
  assert jax.device_count() == 8
  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 2, 3, 6, 6, 16)).astype(np.float32)
  kernel = rng.normal(size=(8, 1, 1, 1, 16, 16)).astype(np.float32)
  conv = lambda x, k: conv3d.conv3d(x, k, (1, 1, 1), ((0, 0),) * 3, lowering)
  alone = np.stack([np.asarray(conv(x[f], kernel[f])) for f in range(8)])
  folds = sharding.fold_sharded(sharding.make_mesh(1))
  swept = jax.jit(jax.vmap(conv, spmd_axis_name=sharding.FOLD), in_shardings=(folds, folds),
                  out_shardings=folds)(jax.device_put(x, folds), jax.device_put(kernel, folds))
  np.testing.assert_allclose(np.asarray(swept), alone, atol=1e-4)
