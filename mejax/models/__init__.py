"""Model registry: a plain dict from model name to its entry (one file per model family).

    model = get_model('convlstm_ae', num_classes=3, width_multiplier=1 / 16)
    variables = model.init({'params': key}, clips, train=False)

Every model takes (N, T, H, W, C) float32 clips and `train`, and keeps BatchNorm statistics (if
any) in the `batch_stats` collection and per-fold constants (if any) in `constants`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import numpy as np

from mejax.models import cnn3d, convlstm, dynamic_cnn, r3d, stcnn, strcn


@dataclasses.dataclass(frozen=True)
class Entry:
  """What the library needs to know of one model, beyond its constructor.

  saliency_layer: a regular expression over module paths ('backbone/layer4'); Grad-CAM weighs the
    last 5-D (N, T, H, W, C) output of a module whose path matches. '' : the model has no 3D
    conv block to weigh, and saliency is gradient x input.
  fold_constants: per-fold constants derived from each fold's training clips before training,
    `fold_constants(view uint8 [N, T, H, W, C], train_mask bool [F, N], constants) -> constants`
    where `constants` is the model's initial `constants` collection stacked over the F folds.
  fixed_pixels: the model reads pixels at fixed positions of its input (STRCN-A's per-fold
    selection, or a ready-made pixels x time matrix): flips and rotations would move the face
    off them, so `sweep.check_config` refuses them.
  """
  build: Callable[..., nn.Module]
  saliency_layer: str = ''
  fold_constants: Callable[[np.ndarray, np.ndarray, Any], Any] | None = None
  fixed_pixels: bool = False


MODELS: dict[str, Entry] = {
    'r3d18': Entry(r3d.R3D18, saliency_layer='layer4'),
    'convlstm_ae': Entry(convlstm.ConvLSTMAutoencoder, saliency_layer='backbone/layer4'),
    # Reddy et al. 2019 MicroExpSTCNN (= Talluri's Model-B)
    'stcnn': Entry(stcnn.STCNN, saliency_layer='conv1'),
    'fusenet': Entry(stcnn.FuseNet),  # MicroExpFuseNet: one 3D CNN per region (channel)
    'model_a': Entry(cnn3d.ModelA, saliency_layer=r'conv\d+'),  # Talluri et al. 2022
    'split_model': Entry(cnn3d.SplitModel, saliency_layer=r'conv\d+'),
    'model_b': Entry(cnn3d.ModelB, saliency_layer=r'conv\d+'),
    'model_c': Entry(cnn3d.ModelC, saliency_layer=r'conv\d+'),
    # Xia et al.: selected pixels x time of the clip, the pixels chosen per fold
    'strcn_a': Entry(strcn.STRCNAppearanceFrames, fold_constants=strcn.fold_constants,
                     fixed_pixels=True),
    # the same network on a ready-made matrix
    'strcn_a_matrix': Entry(strcn.STRCNAppearance, fixed_pixels=True),
    'strcn_g': Entry(strcn.STRCNGeometric),  # Xia et al.: onset -> apex optical flow
    'di_vgg': Entry(dynamic_cnn.VGGStyle),  # Le et al. 2020: region crops of dynamic images
    'di_resnet': Entry(dynamic_cnn.ResNetStyle),
}


def entry(name: str) -> Entry:
  """The registry entry of model `name`."""
  if name not in MODELS:
    raise ValueError(f'Unknown model {name!r}; known models: {", ".join(sorted(MODELS))}')
  return MODELS[name]


def _module_class(name: str):
  build = entry(name).build
  return getattr(build, 'func', build)  # unwrap functools.partial


def from_config(model_config, num_classes: int, dtype: Any) -> nn.Module:
  """The model of a `config.model` section, computing in `dtype` (model.dtype resolved)."""
  kwargs = {k: (dtype if k == 'dtype' else v) for k, v in model_config.items() if k != 'name'}
  return get_model(model_config.name, num_classes=num_classes, **kwargs)


def hyperparameters(name: str) -> dict[str, Any]:
  """Every setting a config's model section (config keys model.*) can give model `name`, with its
  default: the module's fields less num_classes (from the data), the keywords its registry entry
  binds (they are what the name means, e.g. STRCN-G's variant) and fields without a default.
  dtype is given by name ('float32'), as configs give it."""
  build = entry(name).build
  bound = set(getattr(build, 'keywords', None) or {}) | {'parent', 'name', 'num_classes'}
  defaults = {}
  for field in dataclasses.fields(_module_class(name)):
    if field.name in bound or not field.init:
      continue
    if field.name == 'dtype':
      defaults['dtype'] = 'float32'
    elif field.default is not dataclasses.MISSING:
      defaults[field.name] = field.default
    elif field.default_factory is not dataclasses.MISSING:
      defaults[field.name] = field.default_factory()
  return defaults


def known_keys(model_config):
  """A copy of a `config.model` section without the keys its model lacks (the benchmark runs a
  config written for one model with another; training keeps them, so `get_model` names a
  misspelt key)."""
  known = {f.name for f in dataclasses.fields(_module_class(model_config.name))} | {'name'}
  return type(model_config)({k: v for k, v in model_config.items() if k in known})


def get_model(name: str, **kwargs: Any) -> nn.Module:
  """The model registered as `name`, constructed with `kwargs` (its attributes)."""
  known = {f.name for f in dataclasses.fields(_module_class(name))} - {'parent', 'name'}
  unknown = sorted(set(kwargs) - known)
  if unknown:
    raise ValueError(f'Model {name!r} has no attribute(s) {unknown} (config keys model.*); '
                     f'its attributes: {sorted(known)}')
  defaults = hyperparameters(name)
  for key, value in kwargs.items():
    default = defaults.get(key)
    # A kernel given as one number (--config.model.kernel_size=5, read as (5,)) would fail deep
    # in the model; say what it takes instead. (Widths and stage sizes may change length.)
    if key.endswith('kernel_size') and (not isinstance(value, (tuple, list))
                                        or len(value) != len(default)):
      raise ValueError(f'model.{key}={value!r}: must be a sequence of {len(default)} like its '
                       f'default {tuple(default)}')
  return entry(name).build(**kwargs)
