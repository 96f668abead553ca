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
import pathlib
import sys
import warnings
import zipfile
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


def _listed(keys: list[str], limit: int = 12) -> str:
  """`keys` as a list, the first `limit` of a longer one (the error stays readable)."""
  if len(keys) <= limit:
    return str(keys)
  return f'{str(keys[:limit])[:-1]}, ... ({len(keys)} in all)]'


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
    raise KeyError(f'state_dict does not match torchvision r3d_18: missing keys '
                   f'{_listed(missing)}, unexpected keys {_listed(unexpected)}')

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
    mismatches.sort(key=_network_order)  # the first ones shown: the stem's weights
    more = f'; ... ({len(mismatches)} in all)' if len(mismatches) > 5 else ''
    raise ValueError('state_dict shapes do not match torchvision r3d_18 '
                     f'(width_multiplier={width_multiplier}): ' + '; '.join(mismatches[:5]) + more)
  return {collection: flax.traverse_util.unflatten_dict(flat)
          for collection, flat in converted.items()}


_STAGES = ('stem', 'layer1', 'layer2', 'layer3', 'layer4', 'fc')


def _network_order(mismatch: str) -> tuple[int, bool]:
  """Sort key of a 'key: got ..., expected ...' line: input to output, weights before BN stats."""
  stage = mismatch.split('.', 1)[0]
  return (_STAGES.index(stage) if stage in _STAGES else len(_STAGES), 'running_' in mismatch)


class WeightsFileError(ValueError):
  """A weights file that cannot be read as a state_dict; the message starts with the file."""


WEIGHTS_FORMATS = '.pth, .pt, .safetensors or .npz'
# Keys under which training checkpoints commonly keep the state_dict beside optimiser state etc.
STATE_DICT_WRAPPERS = ('state_dict', 'model_state_dict', 'model')
_STATE_DICT = 'a state_dict (mapping of names to tensors)'


def load_state_dict_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a state_dict (key -> numpy array) from .safetensors, .npz or .pth/.pt, never unsafely.

  A `.pth` is read with `torch.load(weights_only=True)`: a pickle that would build anything but
  tensors and plain containers is refused before any of its code runs. A training checkpoint that
  wraps the weights (`{'state_dict': ...}`, `'model_state_dict'`, `'model'`) is unwrapped.
  Raises WeightsFileError (the file, then what was expected) for anything that is not such a file:
  missing, a folder, empty, truncated, damaged, of another format, or holding other objects.
  """
  path = pathlib.Path(path)
  suffix = path.suffix.lower()
  if suffix not in ('.npz', '.safetensors', '.pth', '.pt'):
    raise WeightsFileError(f'{path}: Unknown weights format {suffix!r}: use {WEIGHTS_FORMATS}')
  if suffix == '.safetensors':
    try:
      from safetensors.numpy import load_file
    except ImportError as error:
      raise ImportError(f'{path}: reading .safetensors needs the safetensors package '
                        '(pip install safetensors).') from error
  if suffix in ('.pth', '.pt'):
    try:
      import torch  # noqa: F401  (read by _load_torch; missing: say what to do first)
    except ImportError as error:
      raise ImportError(
          f'{path}: reading it needs torch (pip install torch), or convert it to .npz once '
          'where torch is installed: '
          'np.savez(out, **{k: v.float().numpy() for k, v in '
          'torch.load(path, weights_only=True).items()})') from error
  if not path.is_file():
    what = 'is a folder' if path.is_dir() else 'does not exist' if not path.exists() else (
        'is not a regular file')
    raise WeightsFileError(f'{path}: {what}; expected a weights file ({WEIGHTS_FORMATS})')
  if path.stat().st_size == 0:
    raise WeightsFileError(f'{path}: is empty (0 bytes); expected {_STATE_DICT}')
  if suffix == '.npz':
    loaded = _read(path, 'a .npz archive of arrays', _load_npz)
  elif suffix == '.safetensors':
    loaded = _read(path, 'a .safetensors file', lambda p: dict(load_file(p)))
  else:
    loaded = _read(path, 'a PyTorch file written by torch.save', _load_torch)
  return _state_dict_arrays(loaded, path)


def _load_torch(path: pathlib.Path):
  import torch
  if zipfile.is_zipfile(path):  # torch.save's format; torch reads tensor bytes without a CRC check
    with zipfile.ZipFile(path) as archive:
      damaged = archive.testzip()
    if damaged is not None:
      raise WeightsFileError(f'{path}: damaged: its member {damaged!r} fails the zip CRC check; '
                             'expected an intact PyTorch file written by torch.save')
  with warnings.catch_warnings():  # e.g. about the pickle protocol of a file it then refuses
    warnings.filterwarnings('ignore', module=r'torch')
    return torch.load(path, map_location='cpu', weights_only=True)


def _read(path: pathlib.Path, expected: str, reader):
  """reader(path), with whatever a damaged file makes the reader raise as one WeightsFileError."""
  try:
    return reader(path)
  except WeightsFileError:
    raise
  except OSError as error:  # no permission, a vanished file
    raise WeightsFileError(f'{path}: cannot be read ({error.strerror or error}); expected '
                           f'{expected}') from error
  except Exception as error:  # pylint: disable=broad-except  # each reader raises its own kinds
    if 'Weights only load failed' in str(error) and 'Unsupported global' in str(error):
      # torch.load(weights_only=True) stopped at a pickled object it does not allow: nothing ran.
      raise WeightsFileError(
          f'{path}: refused: it holds pickled Python objects other than tensors and plain '
          f'containers, which only an unsafe unpickle could build (nothing in it was run); '
          f'expected {_STATE_DICT}') from error
    if 'Weights only load failed' in str(error):
      # Stopped at a pickle instruction the safe loader does not take: random bytes and plain
      # pickles alike, so only the general message is true.
      reason = str(error).split('WeightsUnpickler error:')[-1].split('Check the documentation')[0]
      reason = ' '.join(reason.split())
      raise WeightsFileError(
          f'{path}: not a readable file: expected {expected}, but it is damaged, truncated or '
          f'of another format, or a pickle the weights-only loader refuses ({reason}; nothing '
          'in it was run)') from error
    detail = ' '.join(f'{type(error).__name__}: {error}'.split())[:200]
    raise WeightsFileError(f'{path}: not a readable file: expected {expected}, but it is '
                           f'damaged, truncated or of another format ({detail})') from error


def _load_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
  if not zipfile.is_zipfile(path):  # np.load would try it as a pickle and talk about trust
    raise WeightsFileError(f'{path}: not a readable .npz archive (a .npz is a zip archive of '
                           f'.npy arrays, as np.savez writes it; this is damaged, truncated or of '
                           f'another format)')
  with np.load(path, allow_pickle=False) as archive:
    arrays = {}
    for key in archive.files:
      try:
        arrays[key] = archive[key]
      except ValueError as error:
        if 'allow_pickle' not in str(error):
          raise
        raise WeightsFileError(f'{path}: array {key!r} holds pickled Python objects, which are '
                               f'not read; expected numeric arrays') from error
    return arrays


def _is_array(value) -> bool:
  torch = sys.modules.get('torch')  # imported by the .pth reader when it ran
  return isinstance(value, np.ndarray) or (torch is not None and torch.is_tensor(value))


def _state_dict_arrays(loaded, path: pathlib.Path) -> dict[str, np.ndarray]:
  """The name -> numpy array mapping in `loaded` (unwrapping a training checkpoint), or
  WeightsFileError saying what was found instead."""
  if not isinstance(loaded, Mapping):
    found = 'a Tensor' if _is_array(loaded) else f'a {type(loaded).__name__}'
    raise WeightsFileError(f'{path}: {_STATE_DICT} expected, found {found}')
  if not all(_is_array(v) for v in loaded.values()):
    wrapper = next((key for key in STATE_DICT_WRAPPERS
                    if isinstance(loaded.get(key), Mapping)), None)
    if wrapper is None:
      raise WeightsFileError(f'{path}: {_STATE_DICT} expected, found a mapping of other values '
                             f'(keys {_listed(sorted(map(str, loaded)))}) with none of '
                             f'{list(STATE_DICT_WRAPPERS)} holding the state_dict')
    loaded, where = loaded[wrapper], f' (in {wrapper!r})'
  else:
    where = ''
  if not loaded:
    raise WeightsFileError(f'{path}: {_STATE_DICT} expected, found an empty mapping{where}')
  arrays = {}
  for key, value in loaded.items():
    if not isinstance(key, str) or not _is_array(value):
      raise WeightsFileError(f'{path}: {_STATE_DICT} expected; {key!r}{where} holds a '
                             f'{type(value).__name__}, not a tensor')
    try:
      if isinstance(value, np.ndarray):
        array = value
      else:
        value = value.detach()
        array = value.float().numpy() if value.is_floating_point() else value.numpy()
    except Exception as error:  # pylint: disable=broad-except  # quantized, sparse, meta ...
      raise WeightsFileError(f'{path}: tensor {key!r}{where} cannot be read as an array '
                             f'({type(error).__name__}: {error})') from error
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
      raise WeightsFileError(f'{path}: {key!r}{where} has dtype {array.dtype}; expected a '
                             'numeric tensor')
    arrays[key] = array
  return arrays


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
