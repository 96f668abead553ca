"""Import torchvision `r3d_18` weights (e.g. Kinetics-400 `r3d_18-b3b3357e.pth`) into Flax.

The weights cannot be downloaded here: the user passes a local file. Files are read without unsafe
pickle loading: `.safetensors` (needs the `safetensors` package), `.npz` (no pickles), or
`.pth`/`.pt` through `torch.load(..., weights_only=True)` (needs torch).

Key mapping (torchvision -> Flax `mejax.models.r3d.ResNet3D`; BN `weight`/`bias` are params
`scale`/`bias`, `running_mean`/`running_var` are batch_stats `mean`/`var`, `num_batches_tracked`
is ignored):

    stem.0.weight                 params/stem/conv/kernel
    stem.1.*                      stem/bn
    layerL.B.conv1.0.weight       params/layerL/blockB/conv1/kernel
    layerL.B.conv1.1.*            layerL/blockB/bn1
    layerL.B.conv2.0.weight       params/layerL/blockB/conv2/kernel
    layerL.B.conv2.1.*            layerL/blockB/bn2
    layerL.0.downsample.0.weight  params/layerL/block0/downsample/conv/kernel
    layerL.0.downsample.1.*       layerL/block0/downsample/bn
    fc.weight, fc.bias            params/fc/kernel, params/fc/bias

Conv weights (out, in, kT, kH, kW) become (kT, kH, kW, in, out); fc (out, in) becomes (in, out).
Both frameworks compute cross-correlations, so kernels are transposed, never flipped.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

from mejax.models import r3d

_BN_TORCH_NAMES = {  # Flax (collection, name) -> torchvision BatchNorm suffix
    ('params', 'scale'): 'weight',
    ('params', 'bias'): 'bias',
    ('batch_stats', 'mean'): 'running_mean',
    ('batch_stats', 'var'): 'running_var',
}
# Flax module name inside a block -> torchvision Sequential prefix.
_BLOCK_TORCH_PREFIX = {'conv1': 'conv1.0', 'bn1': 'conv1.1', 'conv2': 'conv2.0', 'bn2': 'conv2.1'}
_SUBMODULE_TORCH_INDEX = {'conv': '0', 'bn': '1'}  # inside `stem` and `downsample`


def _torch_module_prefix(module_path: tuple[str, ...]) -> str:
  """('layer2', 'block0', 'downsample', 'conv') -> 'layer2.0.downsample.0'."""
  head, *rest = module_path
  if head == 'fc' and not rest:
    return 'fc'
  if head == 'stem' and len(rest) == 1:
    return f'stem.{_SUBMODULE_TORCH_INDEX[rest[0]]}'
  if head.startswith('layer') and rest and rest[0].startswith('block'):
    block = f'{head}.{rest[0][len("block"):]}'
    if len(rest) == 2:
      return f'{block}.{_BLOCK_TORCH_PREFIX[rest[1]]}'
    if len(rest) == 3 and rest[1] == 'downsample':
      return f'{block}.downsample.{_SUBMODULE_TORCH_INDEX[rest[2]]}'
  raise ValueError(f'No torchvision name for Flax module {"/".join(module_path)}')


def torch_key(collection: str, path: tuple[str, ...]) -> str:
  """The torchvision state_dict key of one Flax variable, e.g. ('params', ('fc', 'kernel'))."""
  *module_path, name = path
  prefix = _torch_module_prefix(tuple(module_path))
  if name == 'kernel':
    return f'{prefix}.weight'
  if module_path[-1].startswith('bn'):  # bn, bn1, bn2
    return f'{prefix}.{_BN_TORCH_NAMES[collection, name]}'
  return f'{prefix}.{name}'  # Dense bias


def _torch_shape(flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  if len(flax_shape) == 5:  # conv (kT, kH, kW, in, out) -> (out, in, kT, kH, kW)
    return (flax_shape[4], flax_shape[3], *flax_shape[:3])
  if len(flax_shape) == 2:  # dense (in, out) -> (out, in)
    return flax_shape[::-1]
  return flax_shape


def _to_flax_layout(value: np.ndarray) -> np.ndarray:
  if value.ndim == 5:
    return np.transpose(value, (2, 3, 4, 1, 0))
  if value.ndim == 2:
    return value.T
  return value


def r3d_variable_shapes(num_classes: int | None = 400, width_multiplier: float = 1.0):
  """Shapes of the Flax R3D-18 variables (nothing computed: `jax.eval_shape`)."""
  model = r3d.R3D18(num_classes=num_classes, width_multiplier=width_multiplier)
  dummy = jnp.zeros((1, 1, 8, 8, 3), jnp.float32)
  return jax.eval_shape(lambda: model.init(jax.random.key(0), dummy, train=False))


def torchvision_r3d18_shapes(num_classes: int | None = 400,
                             width_multiplier: float = 1.0) -> dict[str, tuple[int, ...]]:
  """torchvision `r3d_18` state_dict key -> shape, generated from the Flax module structure.

  With `num_classes=400` this is torchvision's 122 keys, `num_batches_tracked` (shape ()) included.
  `num_classes=None` leaves out `fc.*`.
  """
  shapes = {}
  for collection, tree in r3d_variable_shapes(num_classes, width_multiplier).items():
    for path, leaf in flax.traverse_util.flatten_dict(tree).items():
      key = torch_key(collection, path)
      shapes[key] = _torch_shape(tuple(leaf.shape))
      if collection == 'batch_stats' and path[-1] == 'mean':
        shapes[key.replace('running_mean', 'num_batches_tracked')] = ()
  return shapes


def r3d_variables_from_torchvision(state_dict: Mapping[str, Any], *, include_head: bool = True,
                                   width_multiplier: float = 1.0) -> dict[str, Any]:
  """torchvision `r3d_18` state_dict -> {'params': ..., 'batch_stats': ...} of `r3d.R3D18`.

  Args:
    state_dict: key -> array (numpy, or anything `np.asarray` reads), torchvision layout.
    include_head: convert `fc.*` (num_classes taken from `fc.weight`); False ignores `fc.*` and
      returns the variables of `R3D18(num_classes=None)`.
    width_multiplier: the R3D width the weights are for (1.0 for torchvision's own).
  Raises:
    KeyError: keys missing from, or unexpected in, `state_dict` (all of them named).
    ValueError: arrays whose shapes differ from R3D-18's (all of them named).
  """
  arrays = {key: value for key, value in state_dict.items()
            if not key.endswith('num_batches_tracked')
            and (include_head or not key.startswith('fc.'))}
  num_classes = None
  if include_head:
    num_classes = np.shape(arrays['fc.weight'])[0] if 'fc.weight' in arrays else 400
  template = r3d_variable_shapes(num_classes, width_multiplier)
  expected = {}  # torch key -> (collection, flax path, flax shape)
  for collection, tree in template.items():
    for path, leaf in flax.traverse_util.flatten_dict(tree).items():
      expected[torch_key(collection, path)] = (collection, path, tuple(leaf.shape))

  missing = sorted(set(expected) - set(arrays))
  unexpected = sorted(set(arrays) - set(expected))
  if missing or unexpected:
    raise KeyError(f'state_dict does not match torchvision r3d_18: missing keys {missing}, '
                   f'unexpected keys {unexpected}')

  converted = {'params': {}, 'batch_stats': {}}
  mismatches = []
  for key, (collection, path, flax_shape) in expected.items():
    value = _to_flax_layout(np.asarray(arrays[key], dtype=np.float32))
    if value.shape != flax_shape:
      mismatches.append(f'{key}: got {tuple(np.shape(arrays[key]))}, '
                        f'expected {_torch_shape(flax_shape)}')
      continue
    converted[collection][path] = jnp.asarray(value)
  if mismatches:
    raise ValueError('state_dict shapes do not match torchvision r3d_18 '
                     f'(width_multiplier={width_multiplier}): ' + '; '.join(mismatches))
  return {collection: flax.traverse_util.unflatten_dict(flat)
          for collection, flat in converted.items()}


def load_state_dict_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a state_dict (key -> numpy array) from .safetensors, .npz or .pth/.pt, never unsafely."""
  path = os.fspath(path)
  suffix = os.path.splitext(path)[1].lower()
  if suffix == '.npz':
    with np.load(path, allow_pickle=False) as archive:
      return {key: archive[key] for key in archive.files}
  if suffix == '.safetensors':
    try:
      from safetensors.numpy import load_file
    except ImportError as error:
      raise ImportError(f'Reading {path} needs the safetensors package '
                        '(pip install safetensors).') from error
    return dict(load_file(path))
  if suffix in ('.pth', '.pt'):
    try:
      import torch
    except ImportError as error:
      raise ImportError(
          f'Reading {path} needs torch (pip install torch), or convert it to .npz once '
          'where torch is installed: '
          'np.savez(out, **{k: v.float().numpy() for k, v in '
          'torch.load(path, weights_only=True).items()})') from error
    loaded = torch.load(path, map_location='cpu', weights_only=True)
    if 'state_dict' in loaded and isinstance(loaded['state_dict'], Mapping):
      loaded = loaded['state_dict']  # a training checkpoint wrapping the weights
    return {key: value.detach().float().numpy() if value.is_floating_point()
            else value.detach().numpy() for key, value in loaded.items()}
  raise ValueError(f'Unknown weights format {suffix!r} for {path}: use .safetensors, .npz, '
                   '.pth or .pt')


def with_torchvision_backbone(variables: Mapping[str, Any], state_dict: Mapping[str, Any], *,
                              backbone: str = 'backbone',
                              width_multiplier: float = 1.0) -> dict[str, Any]:
  """`variables` with their R3D-18 `backbone` subtree replaced by torchvision weights.

  For models such as `ConvLSTMAutoencoder` whose backbone is `R3D18(num_classes=None)`; `fc.*` in
  `state_dict` is ignored. `width_multiplier` must be the model's (1.0 for real Kinetics weights).
  Other variables are returned unchanged.
  """
  imported = r3d_variables_from_torchvision(state_dict, include_head=False,
                                            width_multiplier=width_multiplier)
  result = {collection: dict(tree) for collection, tree in variables.items()}
  for collection, tree in imported.items():
    current = jax.tree_util.tree_map(np.shape, result[collection][backbone])
    new = jax.tree_util.tree_map(np.shape, tree)
    if current != new:
      raise ValueError(f'{collection}/{backbone} of the model does not have the shapes of the '
                       f'imported R3D-18 (check width_multiplier={width_multiplier})')
    result[collection][backbone] = tree
  return result


def pretrained_leaves(model_variables: Mapping[str, Any], loaded: Mapping[str, Any]
                      ) -> tuple[dict[tuple[str, ...], Any], list[str]]:
  """Which variables of a model an imported R3D-18 checkpoint (`mejax.convert`) initialises.

  model_variables: the model's variables (arrays or `jax.eval_shape` structs).
  loaded: {'params', 'batch_stats'} of `R3D18` as `mejax.convert` writes them.
  Returns ({(collection, *path): array}, notes). A model with a `backbone` (convlstm_ae) takes
  the R3D-18 layers there; otherwise (r3d18) paths match one to one. A head (`fc`) of another
  size is left to its fresh initialisation, and said so in the notes.
  Raises ValueError naming the first variable whose shape differs, or when nothing matches.
  """
  model_flat = {(c,) + p: v for c in model_variables
                for p, v in flax.traverse_util.flatten_dict(dict(model_variables[c])).items()}
  prefix = ('backbone',) if ('params', 'backbone') in {k[:2] for k in model_flat} else ()
  leaves, notes = {}, []
  for collection in ('params', 'batch_stats'):
    for path, value in flax.traverse_util.flatten_dict(dict(loaded.get(collection, {}))).items():
      target = (collection,) + prefix + tuple(path)
      name = '/'.join(target)
      if path[0] == 'fc' and (prefix or target not in model_flat
                              or np.shape(model_flat[target]) != np.shape(value)):
        notes.append(f'{name}: imported head not used (the model has its own)')
        continue
      if target not in model_flat:
        raise ValueError(f'init_from: the model has no variable {name} for the imported R3D-18 '
                         f'weights (is model.name an R3D-18-based model with width_multiplier '
                         f'matching the checkpoint?)')
      if np.shape(model_flat[target]) != np.shape(value):
        raise ValueError(f'init_from: {name} has shape {np.shape(model_flat[target])} in the '
                         f'model but {np.shape(value)} in the checkpoint')
      leaves[target] = value
  if not leaves:
    raise ValueError('init_from: the checkpoint initialises no variable of the model')
  return leaves, notes
