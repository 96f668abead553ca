"""Dynamic-image region CNNs (Le et al. 2020, MODELS.md §6).

  python -m mejax.main --config configs/dynamic_image.py --workdir runs/di_vgg
  python -m mejax.main --config configs/dynamic_image.py:resnet --workdir runs/di_resnet
  python -m mejax.main --config configs/dynamic_image.py:smoke --workdir runs/di_smoke
  python -m mejax.main --config configs/dynamic_image.py:resnet,smoke --workdir runs/di_resnet_smoke

Input: the approximate-rank-pooling dynamic image of the magnified onset..offset frames, its
eyebrow, nose and mouth regions (fixed boxes of the eye-aligned face crop, eyes masked;
`mejax.preprocess.regions` layout "dynamic_image") resized to 64x64 RGB and stacked on channels.
Presets: (none) VGG-style CNN from scratch (the paper fine-tunes face-pretrained VGG19/ResNet50),
magnification alpha 8, SGD lr 1e-4 (the paper's) with momentum 0.9, 30 epochs, 10-fold CV;
resnet: the ResNet-style CNN; smoke: VGG-style at width 1/4 on synthetic_me/micro, 24 LOSO
folds, 32x32 regions, 8 epochs, lr 1e-2; resnet,smoke: the ResNet-style CNN resized the same way.
"""

import pathlib

from mejax import config_files


def get_config(arg: str | None = None):
  c = config_files.skeleton(pathlib.Path(__file__).parent,
                            {"name": "di_vgg", "width_multiplier": 1.0})
  c.data.view = "dynamic_image"
  c.data.regions = "dynamic_image"
  c.data.size = 64
  c.data.magnify_alpha = 8.0
  c.protocol.name = "kfold"
  c.protocol.k = 10
  c.protocol.grouped = False
  config_files.paper_sgd(c, learning_rate=1e-4, momentum=0.9, batch_size=16, num_epochs=30,
                         eval_every=5, flip=True)
  variant, smoke = config_files.parse_preset(arg, ("resnet",), "configs/dynamic_image.py")
  if variant == "resnet":
    c.model.name = "di_resnet"
  if smoke:
    config_files.smoke(c)
    c.data.size = 32
    c.model.width_multiplier = 0.25
    c.train.learning_rate = 1e-2
    c.train.balanced_sampling = True
  return c
