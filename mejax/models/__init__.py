"""Model registry: a plain dict from model name to constructor (one file per model family).

    model = get_model('convlstm_ae', num_classes=3, width_multiplier=1 / 16)
    variables = model.init({'params': key}, clips, train=False)

Every model takes (N, T, H, W, C) float32 clips and `train`, and keeps BatchNorm statistics (if
any) in the `batch_stats` collection.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn

from mejax.models import cnn3d, convlstm, dynamic_cnn, r3d, stcnn, strcn

MODELS: dict[str, Callable[..., nn.Module]] = {
    'r3d18': r3d.R3D18,
    'convlstm_ae': convlstm.ConvLSTMAutoencoder,
    'stcnn': stcnn.STCNN,             # Reddy et al. 2019 MicroExpSTCNN (= Talluri's Model-B)
    'fusenet': stcnn.FuseNet,         # Reddy et al. 2019 MicroExpFuseNet (two regions)
    'model_a': cnn3d.ModelA,          # Talluri et al. 2022
    'split_model': cnn3d.SplitModel,
    'model_b': cnn3d.ModelB,
    'model_c': cnn3d.ModelC,
    'strcn_a': strcn.STRCNAppearanceFrames,  # Xia et al.: selected pixels x time of the clip
    'strcn_a_matrix': strcn.STRCNAppearance,  # the same network on a ready-made matrix
    'strcn_g': strcn.STRCNGeometric,   # Xia et al.: onset -> apex optical flow
    'di_vgg': dynamic_cnn.VGGStyle,    # Le et al. 2020: region crops of dynamic images
    'di_resnet': dynamic_cnn.ResNetStyle,
}


def from_config(model_config, num_classes: int, dtype: Any, *,
                drop_unknown: bool = False) -> nn.Module:
  """The model of a `config.model` section, computing in `dtype` (model.dtype resolved).

  drop_unknown: leave out keys the named model lacks (the benchmark runs a config written for one
  model with another); training keeps them, so `get_model` names a misspelt key.
  """
  kwargs = {k: (dtype if k == 'dtype' else v) for k, v in model_config.items() if k != 'name'}
  if drop_unknown and model_config.name in MODELS:
    module_class = getattr(MODELS[model_config.name], 'func', MODELS[model_config.name])
    known = {f.name for f in dataclasses.fields(module_class)}
    kwargs = {k: v for k, v in kwargs.items() if k in known}
  return get_model(model_config.name, num_classes=num_classes, **kwargs)


def get_model(name: str, **kwargs: Any) -> nn.Module:
  """The model registered as `name`, constructed with `kwargs` (its attributes)."""
  if name not in MODELS:
    raise ValueError(f'Unknown model {name!r}; known models: {", ".join(sorted(MODELS))}')
  module_class = getattr(MODELS[name], 'func', MODELS[name])  # unwrap functools.partial
  known = {f.name for f in dataclasses.fields(module_class)} - {'parent', 'name'}
  unknown = sorted(set(kwargs) - known)
  if unknown:
    raise ValueError(f'Model {name!r} has no attribute(s) {unknown} (config keys model.*); '
                     f'its attributes: {sorted(known)}')
  return MODELS[name](**kwargs)
