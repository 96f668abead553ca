"""3DCNN-backed ConvLSTM autoencoder (Islam et al. 2022) on LOSO folds.

  python -m mejax.main --config configs/convlstm.py --workdir runs/convlstm          # paper sizes
  python -m mejax.main --config configs/convlstm.py:smoke --workdir runs/smoke       # 2 CPU cores

Presets (the part after ':'):
  (none)  paper widths (R3D-18 + ConvLSTM F=101, ~37.6 M parameters), 12x64x64 RGB clips,
          batch 64, Adam 1e-3 (the paper's micro fine-tuning rate), class-weighted sampling and
          loss, flip + 8 degree rotation, fixed epochs, last state evaluated.
  smoke   the same code path sized for a 2-core CPU: width x1/16, 8x24x24 clips taken relative
          to the onset frame, balanced sampling with an unweighted loss, flip only, 12 epochs;
          convs lowered as 2D convs ('frames2d', faster than 'auto' at these tiny sizes) and
          folds looped (both measured faster on XLA:CPU).
  paper   the paper's schedule: inner validation of 2 training subjects per fold drives
          reduce-on-plateau (patience 5) and early stopping (patience 8), best state restored.
  macro   the paper's pre-training on the macro composite (CK+, MUG, Oulu-CASIA VIS-strong),
          80/20 hold-out with a 10 % validation set, Adam 1e-4, smoothing augmentation.
  transfer  the paper's second stage: every LOSO fold of the five-dataset micro composite
          fine-tuned from the :macro run in runs/macro (config.init_from), paper schedule.
  megc2019  the MEGC2019 composite evaluation on the real datasets (built first with
          `python -m mejax.prepare --config configs/convlstm.py:megc2019 --manual_dir
          smic=... --manual_dir casme2=... --manual_dir samm=...`): SMIC-HS + CASME II + SAMM
          selected and labelled by the challenge's ground truth, LOSO over its 68 subjects.
  megc_sweep  paper sizes on synthetic_me/megc_sized (68 subjects, 442 clips: a MEGC2019-sized
          68-fold LOSO sweep), bfloat16 compute; the GPU sweep benchmark.
  VARIANT,smoke  a variant at smoke sizes on synthetic_me: macro,smoke pre-trains on
          synthetic_me/macro, transfer,smoke fine-tunes every synthetic_me/micro LOSO fold from
          runs/macro-smoke with the smoke schedule (comparable with :smoke at equal epochs).
"""

import os

import ml_collections

from mejax import config_files


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.datasets = ("synthetic_me/micro",)
  c.data.data_dir = os.environ.get("TFDS_DATA_DIR",
                                   os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))
  # A name (mejax/data/labels.py) or an inline map: {"classes": ..., "emotions": {...}}.
  c.data.label_map = ml_collections.FieldReference("megc2019", field_type=object)
  c.data.stand_in = False            # True: each licensed dataset's synthetic_me stand-in instead
  c.data.selection = ""              # "megc2019": keep only the MEGC2019 composite's clips
  c.data.view = "onset_apex"
  c.data.num_frames = 12
  c.data.size = 64
  c.data.grey = False
  c.data.relative_to_first_frame = False  # True: frames minus the onset frame (motion only)
  c.data.magnify_alpha = 0.0         # > 0: Eulerian magnification of the evaluated view
  c.data.train_magnify_alphas = ()   # training-only views, one per factor (STRCN: 5..14)
  c.data.view_cache = True           # views cached in <data_dir>/mejax_views: no TensorFlow needed

  c.protocol = ml_collections.ConfigDict()
  c.protocol.name = "loso"
  c.protocol.k = 5
  c.protocol.grouped = False
  c.protocol.repeats = 1
  c.protocol.test_fraction = 0.2
  c.protocol.val_subjects = 0
  c.protocol.val_fraction = 0.0
  c.protocol.seed = 0
  c.protocol.train_datasets = ()     # cross_dataset: stored dataset names, e.g. ("casme2",)
  c.protocol.test_datasets = ()      # cross_dataset: e.g. ("samm",)

  c.model = ml_collections.ConfigDict()
  c.model.name = "convlstm_ae"
  c.model.width_multiplier = 1.0
  c.model.peephole = False
  c.model.cell_init_gain = 4.0     # cells: weight std x sqrt(fan_in); 3 ** -0.5 is PyTorch
  # 'auto': XLA's convolutions on GPU/TPU, per-layer CPU lowerings on XLA:CPU (R3D-18 step 1.55x
  # PyTorch's there instead of 4.9x with 'xla'; docs/benchmarks.md). Results do not depend on it.
  c.model.conv_lowering = "auto"
  c.model.dtype = "float32"          # computation dtype; 'bfloat16' on GPU (parameters stay f32)

  c.train = ml_collections.ConfigDict()
  c.train.num_epochs = 50
  c.train.steps_per_epoch = 0        # 0: ceil(largest fold's training set / batch size)
  c.train.batch_size = 64
  c.train.learning_rate = 1e-3
  c.train.lr_schedule = "constant"   # or "cosine": decay to 0 over num_epochs; "exponential"
  c.train.lr_decay = 0.8             # "exponential": x lr_decay after every epoch
  c.train.optimizer = "adam"         # or "sgd" (with train.momentum)
  c.train.momentum = 0.9             # sgd only
  c.train.weight_decay = 0.0         # L2 added to the gradient (Keras / PyTorch SGD style)
  c.train.balanced_sampling = True   # PyTorch WeightedRandomSampler with 1/class-count weights
  c.train.class_weighted_loss = True
  c.train.loss = "cross_entropy"     # or "balanced": STRCN's per-minibatch class balancing
  c.train.flip = True
  c.train.rotate_degrees = 8.0
  c.train.frame_subsets = ()         # e.g. (1.0, 0.9, 0.8, 0.7, 0.6): STRCN's frame selection
  c.train.smooth_probability = 0.0   # Gaussian smoothing of a clip (the paper's macro augmentation)
  c.train.smooth_sigma = 1.0         # sigma ~ U(0.5, smooth_sigma) pixels
  c.train.plateau_patience = 0       # 0 = off; needs an inner validation set
  c.train.plateau_factor = 0.1
  c.train.plateau_min_scale = 1e-3
  c.train.early_stopping_patience = 0  # 0 = off; needs an inner validation set
  c.train.restore_best = True        # with early stopping: evaluate the best-validation state
  c.train.only_folds = ()            # train a subset of the folds (e.g. (3,)), by fold index
  c.train.fold_strategy = "auto"     # 'vmap' | 'map' | 'loop'; 'auto': measured best per backend
  c.train.fold_chunk = 0             # folds vmapped at once per device; 0: sized from memory

  c.eval = ml_collections.ConfigDict()
  c.eval.every_epochs = 5            # test metrics for the curves only; never used for decisions
  c.eval.batch_size = 64

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = 1                    # devices per fold row; the rest of the devices split folds
  c.mesh.num_devices = 0             # 0: all devices

  # What every fold starts from ("" : a random initialisation): a `python -m mejax.convert`
  # folder of torchvision r3d_18 weights (e.g. Kinetics-400) for the R3D-18 backbone, or a mejax
  # workdir (e.g. the :macro pre-training), one of its folds at one checkpoint (mejax/transfer.py).
  c.init_from = ""
  c.init_from_fold = ""              # workdir: its fold ("": its only fold)
  c.init_from_epoch = 0              # workdir: its checkpoint (0: the newest)
  c.init_from_select = "reported"    # workdir: 'reported' state, 'final' or 'best'
  c.init_from_parts = ()             # workdir: module paths to carry, e.g. ("backbone",);
                                     # (): all whose shapes match, a fresh head for other classes

  c.checkpoint_every_epochs = 1
  c.log_every_steps = 5
  c.progress = True

  variant, smoke = config_files.parse_preset(arg, VARIANTS, "configs/convlstm.py")
  if variant == "paper":
    _paper_schedule(c)
  elif variant == "macro":
    # The paper's pre-training stage on the macro composite (PROTOCOLS.md "Transfer"): CK+, MUG
    # and Oulu-CASIA (VIS, strong light), 80/20 hold-out with 10 % of the training clips for the
    # plateau / early-stopping decisions, Adam 1e-4, and image smoothing as a further
    # augmentation (the paper gives no smoothing parameters: half the clips, sigma 0.5-1.5 px).
    c.data.datasets = ("ckplus", "mug", "oulu_casia/vl_strong")
    c.data.label_map = "islam2022"
    c.protocol.name = "holdout"
    c.protocol.val_fraction = 0.1
    c.train.learning_rate = 1e-4
    c.train.plateau_patience = 5
    c.train.early_stopping_patience = 10
    c.train.smooth_probability = 0.5
    c.train.smooth_sigma = 1.5
  elif variant == "transfer":
    # The paper's second stage: every LOSO fold of the micro composite (CASME, CASME II, CAS(ME)^2,
    # SMIC-HS, SAMM under the paper's objective classes) fine-tuned from the :macro run's model,
    # with the paper's micro schedule. Run :macro first (README, "Macro -> micro transfer").
    c.data.datasets = ("casme", "casme2/cropped", "casme_sq", "smic/hs", "samm/raw")
    c.data.label_map = "islam2022"
    _paper_schedule(c)
    c.init_from = "runs/macro"
  elif variant == "megc2019":
    # SAMM's 028_4_1 and 032_3_1 (apex outside onset..offset) are in the composite: repaired.
    c.data.datasets = ("smic/hs", "casme2/cropped", "samm/raw/repair=midpoint")
    c.data.selection = "megc2019"
  elif variant == "megc_sweep":
    # A MEGC2019-sized LOSO sweep (68 folds, 442 clips) at paper sizes for one GPU: bf16
    # compute, float32 parameters; folds run in chunks that fit the device's memory.
    c.data.datasets = ("synthetic_me/megc_sized",)
    c.model.dtype = "bfloat16"
  if smoke:
    _smoke(c, variant)
  return c


VARIANTS = ("paper", "macro", "transfer", "megc2019", "megc_sweep")


def _paper_schedule(c: ml_collections.ConfigDict) -> None:
  """Inner validation of 2 training subjects per fold drives reduce-on-plateau (patience 5) and
  early stopping (patience 8); the best state is restored."""
  c.protocol.val_subjects = 2
  c.train.plateau_patience = 5
  c.train.early_stopping_patience = 8


def _smoke(c: ml_collections.ConfigDict, variant: str) -> None:
  """Sized and tuned on 2 CPU cores (docs/benchmarks.md): ~210 s of training, LOSO UAR 0.75.

  With a variant, its schedule at these sizes on synthetic_me: macro,smoke pre-trains on
  synthetic_me/macro (hold-out), transfer,smoke fine-tunes every synthetic_me/micro LOSO fold
  from runs/macro-smoke with the smoke schedule (so it compares with plain smoke at equal epochs).
  """
  c.model.width_multiplier = 1 / 16
  c.model.conv_lowering = "frames2d"
  c.train.fold_strategy = "loop"
  c.data.size = 24
  c.data.num_frames = 8
  # Without a pre-trained backbone a small 3D CNN learns sub-pixel motion under the static face
  # far too slowly on raw frames (chance after 24 epochs); onset-relative frames learn it.
  c.data.relative_to_first_frame = True
  # Balanced sampling alone: with the class-weighted loss as well, minority classes are
  # weighted twice and over-predicted (accuracy 0.39 against UAR 0.59 in a 4-fold probe).
  c.train.class_weighted_loss = False
  c.train.rotate_degrees = 0.0       # rotation slowed fitting: 4-fold UAR 0.64 with, 0.72 without
  c.train.num_epochs = 12
  c.train.batch_size = 16
  c.train.learning_rate = 3e-3
  c.eval.every_epochs = 4
  if variant == "macro":
    # 280 clips, one hold-out fold: 12 steps an epoch; 12 epochs had only begun to learn (hold-out
    # UAR 0.53, validation loss still falling), so more epochs, and the smoke learning rate.
    c.data.datasets = ("synthetic_me/macro",)
    c.train.num_epochs = 40
  elif variant == "transfer":
    c.data.datasets = ("synthetic_me/micro",)
    c.data.label_map = "megc2019"
    c.protocol.val_subjects = 0
    c.train.plateau_patience = 0
    c.train.early_stopping_patience = 0
    c.init_from = "runs/macro-smoke"
  elif variant == "megc2019":  # its datasets are licensed: the smoke version runs synthetic_me
    c.data.datasets = ("synthetic_me/micro",)
    c.data.selection = ""
