"""The PyTorch baseline (`benchmarks.torch_models`) computes what mejax's Flax models compute.

A speed comparison of mejax against PyTorch is only fair on equal work, so from the same weights
(PyTorch init, with random BatchNorm affine parameters and running statistics so that eval mode
is not the identity, and a larger head so that logits are O(1) and an absolute tolerance means
something) the two frameworks must give:

- the same logits (abs 1e-4) in eval mode and in train mode (BatchNorm on batch statistics);
- the same updated BatchNorm running statistics after one train-mode forward, up to one real
  difference of the frameworks: PyTorch updates `running_var` with the unbiased batch variance
  (times n / (n - 1), n = N * T * H * W), Flax with the biased one. Running means are compared as
  they are, running variances after undoing PyTorch's n / (n - 1) (`_flax_convention`);
- the same cross-entropy loss and gradients of every parameter (so a train step is the same
  work), the layouts transposed by the converter.

Models: R3D-18 at width 1/8 (8 x 32 x 32 clips) and at full width on a tiny clip, the ConvLSTM
autoencoder at width 1/8 on 9 x 32 x 32 clips, whose 2 x 2 x 2 layer4 map makes both ConvLSTM
loops run two steps, with and without (random, non-zero) peepholes.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

torch = pytest.importorskip('torch')

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level folder, not an installed package
  sys.path.insert(0, str(ROOT))

from benchmarks import torch_bench, torch_models  # noqa: E402
from mejax.models import r3d  # noqa: E402

LOGIT_ATOL = 1e-4
STATS_ATOL = 1e-5
LOSS_ATOL = 1e-5
# Of the largest entry of each parameter's gradient; seen: <= 7e-5 (float32 rounding through
# train-mode BN backward). A transposed or misplaced kernel is off by O(1).
GRAD_RTOL = 5e-4
SMALL = 1 / 8
MOMENTUM = 0.1  # PyTorch's; Flax's 0.9


def randomise(model, seed: int):
  """Random BN affine parameters and running statistics; a head that makes logits O(1).

  PyTorch's init (BN 1 / 0 and running statistics 0 / 1) would make eval-mode BN nearly the
  identity and leave fc's N(0, 0.01) logits at ~1e-2, where an absolute tolerance proves little.
  """
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm3d):
        module.weight.uniform_(0.5, 1.5, generator=generator)
        module.bias.normal_(0.0, 0.1, generator=generator)
        module.running_mean.normal_(0.0, 0.1, generator=generator)
        module.running_var.uniform_(0.5, 1.5, generator=generator)
    if isinstance(model, torch_models.TorchR3D18) and model.num_classes is not None:
      model.fc.weight.normal_(0.0, model.fc.in_features ** -0.5, generator=generator)
      model.fc.bias.normal_(0.0, 0.1, generator=generator)
    if isinstance(model, torch_models.TorchConvLSTMAutoencoder):
      model.head.weight.mul_(100.0)
      for name, parameter in model.named_parameters():
        if 'peephole' in name:
          parameter.normal_(0.0, 0.5, generator=generator)
  return model


def clips(shape, seed: int = 0):
  """The same random clip as a torch (N, C, T, H, W) tensor and a JAX (N, T, H, W, C) array."""
  array = np.random.default_rng(seed).standard_normal(shape, np.float32)
  return torch.from_numpy(array), jnp.asarray(array.transpose(0, 2, 3, 4, 1))


def flat(tree):
  return flax.traverse_util.flatten_dict(tree, sep='/')


def max_abs_diff(a, b) -> float:
  return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def assert_trees_close(actual, expected, atol: float = 0.0, rtol_of_max: float = 0.0):
  """Same keys and shapes; |a - e| <= atol + rtol_of_max * max|e| per leaf."""
  actual, expected = flat(actual), flat(expected)
  assert actual.keys() == expected.keys()
  for key, want in expected.items():
    got = np.asarray(actual[key])
    want = np.asarray(want)
    assert got.shape == want.shape, key
    tolerance = atol + rtol_of_max * float(np.max(np.abs(want)))
    assert max_abs_diff(got, want) <= tolerance, (key, max_abs_diff(got, want), tolerance)


def _batch_norm_counts(model, x) -> dict[str, int]:
  """n = N * T * H * W seen by each BatchNorm3d in one forward (no state changed)."""
  counts, hooks = {}, []
  for name, module in model.named_modules():
    if isinstance(module, torch.nn.BatchNorm3d):
      hooks.append(module.register_forward_hook(
          lambda module, inputs, output, name=name: counts.__setitem__(
              name, inputs[0].numel() // inputs[0].shape[1])))
  was_training = model.training
  model.eval()
  with torch.no_grad():
    model(x)
  model.train(was_training)
  for hook in hooks:
    hook.remove()
  return counts


def _flax_convention(before: dict, after: dict, counts: dict[str, int]) -> dict:
  """PyTorch's updated state_dict with `running_var` as Flax updates it (biased batch variance).

  PyTorch: v' = (1 - m) v + m * var_b * n / (n - 1); Flax: v' = (1 - m) v + m * var_b.
  """
  result = dict(after)
  for prefix, n in counts.items():
    key = f'{prefix}.running_var'
    old = before[key]
    result[key] = (1 - MOMENTUM) * old + (after[key] - (1 - MOMENTUM) * old) * (n - 1) / n
  return result


# (model factory, clip shape (N, C, T, H, W)); ids name them in the test report.
CASES = {
    'r3d18_w8': (lambda: torch_models.TorchR3D18(num_classes=5, width_multiplier=SMALL),
                 (2, 3, 8, 32, 32)),
    # Not smaller: with n = N * T * H * W = 2 at layer4, train-mode BN (x - mean) / sqrt(var + eps)
    # turns float32 rounding into 0.1 logit differences (ill-conditioned in both frameworks).
    'r3d18_full': (lambda: torch_models.TorchR3D18(num_classes=5), (2, 3, 2, 32, 32)),
    'convlstm_w8': (lambda: torch_models.TorchConvLSTMAutoencoder(3, width_multiplier=SMALL),
                    (2, 3, 9, 32, 32)),
    'convlstm_w8_peephole': (
        lambda: torch_models.TorchConvLSTMAutoencoder(3, width_multiplier=SMALL, peephole=True,
                                                      peephole_size=(2, 2)),
        (2, 3, 9, 32, 32)),
}


@pytest.fixture(scope='module', params=list(CASES))
def case(request):
  factory, shape = CASES[request.param]
  torch.manual_seed(0)
  model = randomise(factory(), seed=1)
  return request.param, model, shape


def test_eval_logits_match(case):
  name, model, shape = case
  x_torch, x_jax = clips(shape)
  variables = torch_models.flax_variables_from_torch(model)
  model.eval()
  with torch.no_grad():
    torch_logits = model(x_torch).numpy()
  twin = torch_models.mejax_twin(model)
  flax_logits = jax.jit(lambda v, x: twin.apply(v, x, train=False))(variables, x_jax)
  diff = max_abs_diff(flax_logits, torch_logits)
  print(f'{name} eval: max|logit| {np.abs(torch_logits).max():.3f}, max abs diff {diff:.2e}')
  assert flax_logits.shape == torch_logits.shape
  assert np.abs(torch_logits).max() > 0.3  # logits that are not all ~0
  assert diff <= LOGIT_ATOL


def test_train_step_logits_statistics_loss_and_gradients_match(case):
  name, model, shape = case
  x_torch, x_jax = clips(shape, seed=2)
  labels = np.arange(shape[0]) % 3
  variables = torch_models.flax_variables_from_torch(model)
  before = {key: value.clone() for key, value in model.state_dict().items()}
  counts = _batch_norm_counts(model, x_torch)

  model.train()
  model.zero_grad(set_to_none=True)
  torch_logits = model(x_torch)
  torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.from_numpy(labels))
  torch_loss.backward()
  after = {key: value.detach().clone() for key, value in model.state_dict().items()}

  twin = torch_models.mejax_twin(model)

  def loss_fn(params, batch_stats):
    logits, updates = twin.apply({'params': params, 'batch_stats': batch_stats}, x_jax,
                                 train=True, mutable=['batch_stats'])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (logits, updates['batch_stats'])

  (flax_loss, (flax_logits, flax_stats)), flax_grads = jax.jit(
      jax.value_and_grad(loss_fn, has_aux=True))(variables['params'], variables['batch_stats'])

  diff = max_abs_diff(flax_logits, torch_logits.detach().numpy())
  print(f'{name} train: max|logit| {torch_logits.abs().max():.3f}, max abs diff {diff:.2e}, '
        f'loss {torch_loss.item():.5f} vs {float(flax_loss):.5f}')
  assert diff <= LOGIT_ATOL
  assert abs(float(flax_loss) - torch_loss.item()) <= LOSS_ATOL

  # Running statistics: means as they are, variances in Flax's (biased) convention.
  torch_stats = torch_models.flax_variables_from_torch(
      model, _flax_convention(before, after, counts))['batch_stats']
  assert_trees_close(flax_stats, torch_stats, atol=STATS_ATOL)
  # ... and the difference is really there: PyTorch's raw running_var is not Flax's.
  raw = torch_models.flax_variables_from_torch(model, after)['batch_stats']
  stem = ('backbone/' if 'convlstm' in name else '') + 'stem/bn/var'
  assert max_abs_diff(flat(raw)[stem], flat(flax_stats)[stem]) > 1e-6

  # Gradients of every parameter, moved to Flax layout by the same converter as the weights.
  grads = {name: parameter.grad for name, parameter in model.named_parameters()}
  grads.update({key: value for key, value in after.items() if key not in grads})
  torch_grads = torch_models.flax_variables_from_torch(model, grads)['params']
  assert_trees_close(flax_grads, torch_grads, atol=1e-7, rtol_of_max=GRAD_RTOL)
  stem_kernel = ('backbone/' if 'convlstm' in name else '') + 'stem/conv/kernel'
  assert np.abs(flat(flax_grads)[stem_kernel]).max() > 0
  if 'convlstm' in name:
    assert np.abs(flat(flax_grads)['autoencoder/encoder/cell1/conv/kernel']).max() > 0


def test_widths_and_state_dict_keys_follow_mejax_and_torchvision():
  for multiplier in (1.0, 1 / 8, 1 / 16, 0.3):
    for width in (64, 101, 128, 256, 512):
      assert torch_models.scaled_width(width, multiplier) == r3d.scaled_width(width, multiplier)
  model = torch_models.TorchR3D18(num_classes=400)
  keys = list(model.state_dict())
  assert len(keys) == 122  # torchvision r3d_18, num_batches_tracked included
  for key in ('stem.0.weight', 'stem.1.running_var', 'layer1.0.conv1.0.weight',
              'layer1.0.conv1.1.bias', 'layer1.0.conv2.0.weight', 'layer1.0.conv2.1.weight',
              'layer2.0.downsample.0.weight', 'layer2.0.downsample.1.running_mean',
              'fc.weight', 'fc.bias'):
    assert key in keys
  assert not any('layer1.0.downsample' in key for key in keys)
  assert sum(p.numel() for p in model.parameters()) == 33_371_472  # torchvision's count
  # The autoencoder at the paper's F = 101: mejax's 37,602,902 parameters.
  autoencoder = torch_models.TorchConvLSTMAutoencoder(3)
  assert sum(p.numel() for p in autoencoder.parameters()) == 37_602_902


def test_converter_names_the_first_missing_or_misshaped_key():
  model = torch_models.TorchConvLSTMAutoencoder(3, width_multiplier=1 / 16)
  state_dict = dict(model.state_dict())
  del state_dict['backbone.layer2.0.downsample.1.running_mean']
  del state_dict['autoencoder.decoder.cell2.conv.bias']
  with pytest.raises(KeyError, match=r"lacks 'backbone\.layer2\.0\.downsample\.1\.running_mean'"
                                     r" \(and 1 more\)"):
    torch_models.flax_variables_from_torch(model, state_dict)

  state_dict = dict(model.state_dict())
  state_dict['autoencoder.encoder.cell1.conv.weight'] = torch.zeros(24, 38, 3, 1)
  with pytest.raises(ValueError, match=r'autoencoder\.encoder\.cell1\.conv\.weight: got shape '
                                       r'\(24, 38, 3, 1\), expected \(24, 38, 3, 3\)'):
    torch_models.flax_variables_from_torch(model, state_dict)

  state_dict = dict(model.state_dict())
  state_dict['autoencoder.encoder.cell3.conv.weight'] = torch.zeros(1)
  with pytest.raises(KeyError, match=r"unexpected key 'autoencoder\.encoder\.cell3"):
    torch_models.flax_variables_from_torch(model, state_dict)

  r3d_model = torch_models.TorchR3D18(num_classes=4, width_multiplier=1 / 16)
  with pytest.raises(KeyError, match=r"lacks 'stem\.0\.weight'"):
    torch_models.flax_variables_from_torch(r3d_model, {})


@pytest.fixture
def restore_torch_threads():
  threads = torch.get_num_threads()
  yield
  torch.set_num_threads(threads)


def test_benchmark_steps_run_and_report(restore_torch_threads):
  model = torch_bench.build_model('convlstm_ae', num_classes=3, width_multiplier=1 / 16)
  before = [p.detach().clone() for p in model.parameters()]
  result = torch_bench.time_train_step(model, batch_size=2, num_frames=4, size=16, steps=2,
                                       warmup=1, threads=1)
  assert result['kind'] == 'train' and result['input_shape'] == (2, 3, 4, 16, 16)
  assert result['steps'] == 2 and result['seconds_per_step'] > 0
  assert result['clips_per_second'] == pytest.approx(2 / result['seconds_per_step'])
  assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # Adam stepped
  result = torch_bench.time_eval_step(torch_bench.build_model('r3d18', 3, 1 / 16), 2, 4, 16,
                                      steps=1, warmup=0, threads=1)
  assert result['kind'] == 'eval' and result['seconds_per_step'] > 0


def test_benchmark_module_imports_without_jax():
  code = ("import sys; sys.modules['jax'] = sys.modules['flax'] = None; "
          "import benchmarks.torch_bench, benchmarks.torch_models")
  subprocess.run([sys.executable, '-c', code], cwd=ROOT, check=True, timeout=120)
