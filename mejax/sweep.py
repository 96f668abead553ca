"""What a run computes with: its data and folds, the lanes, per-fold data, model, optimiser, state
and compiled steps.

Training (`mejax.train`), the benchmark (`mejax.bench`) and the restore API (`mejax.runs`) build
these the same way from a config, so a restored run applies exactly the model, input transform
and fold layout that trained it.

    exp = sweep.prepare(config)                        # ClipSet, view, folds (host)
    s = sweep.build(config, exp.clips.num_classes, exp.inputs.shape[1:], mesh=mesh,
                    labels=exp.clips.label, train_mask=exp.folds.train, fold_ids=exp.fold_ids)
    state = s.init_state(exp.inputs)                   # every lane's state, sharded over folds
    step = s.compile_train_step(state, inputs, train_inputs, labels, free_bytes)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mejax import memory
from mejax import models
from mejax import protocols
from mejax import sharding
from mejax import steps
from mejax.data import clipset as clipset_lib
from mejax.data import labels as labels_lib
from mejax.data import on_device
from mejax.data import stand_ins
from mejax.data import view_cache
from mejax.data import views

log = logging.getLogger(__name__)


# ---- the experiment's data and folds (host) ------------------------------------------------------

@dataclasses.dataclass
class Experiment:
  """Everything fixed before the first step, on the host."""
  clips: clipset_lib.ClipSet
  inputs: np.ndarray           # uint8 view [N, T, S, S, C]
  folds: protocols.Folds
  fold_ids: list[int]          # folds trained in this run (indices into folds)
  warnings: list[str]
  # Training-only variants of the view [K, N, T, S, S, C] (data.train_magnify_alphas): a train
  # step draws one per sample; evaluation and per-fold constants use `inputs`.
  train_inputs: np.ndarray | None = None

  @property
  def folds_json(self) -> dict:
    """folds.json: fold names with the sample ids of their train / val / test sets."""
    return json.loads(json.dumps(self.folds.to_json(self.clips.uid.tolist())))


def prepare(config: ml_collections.ConfigDict, write_cache: bool = True) -> Experiment:
  """Loads the data and its view (from the view cache when one matches: no TensorFlow needed),
  builds the folds and checks the classes of every fold."""
  clips, inputs, train_inputs = view_cache.load_or_build_with_variants(config.data,
                                                                        write=write_cache)
  return prepare_view(clips, inputs, config, train_inputs)


def prepare_clips(clips: clipset_lib.ClipSet, config: ml_collections.ConfigDict) -> Experiment:
  return prepare_view(clips, view_cache.make_view(clips, config.data), config,
                      view_cache.make_variants(clips, config.data))


def prepare_view(clips: clipset_lib.ClipSet, inputs: np.ndarray,
                 config: ml_collections.ConfigDict,
                 train_inputs: np.ndarray | None = None) -> Experiment:
  folds = protocols.make_folds(clips, config.protocol)
  fold_ids = list(config.train.only_folds) or list(range(len(folds.names)))
  unknown = [f for f in fold_ids if not 0 <= f < len(folds.names)]
  if unknown:
    raise ValueError(f"train.only_folds {unknown} out of range: the protocol has "
                     f"{len(folds.names)} folds")
  warnings = []
  counts = on_device.class_counts(clips.label, folds.train, clips.num_classes)
  absent = np.bincount(clips.label, minlength=clips.num_classes) == 0
  for c in np.flatnonzero(absent):  # one line, not one per fold (SMIC has no 'other' clip)
    warnings.append(f"Class {clips.class_names[c]!r} has no clip in the data: every fold gives "
                    "it zero sampling and loss weight")
  for f in fold_ids:
    for c in np.flatnonzero((counts[f] == 0) & ~absent):
      warnings.append(f"Fold {folds.names[f]} has no training sample of class "
                      f"{clips.class_names[c]!r}: it gets zero sampling and loss weight")
  for w in warnings:
    log.warning(w)
  return Experiment(clips, inputs, folds, fold_ids, warnings, train_inputs)


# ---- settings this module owns -------------------------------------------------------------------

def _positive(config: ml_collections.ConfigDict, dotted: str, minimum: int | float = 1,
              integer: bool = True) -> None:
  section, key = dotted.split(".") if "." in dotted else (None, dotted)
  value = (config[section] if section else config).get(key)
  kind = int if integer else (int, float)
  if (isinstance(value, bool) or not isinstance(value, kind) or not np.isfinite(value)
      or value < minimum):
    allowed = (f"an integer >= {minimum}" if integer else f"a number >= {minimum}")
    raise ValueError(f"{dotted}={value!r}: must be {allowed}")


def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses data, model, optimiser and step settings that cannot run, before anything is
  written; each message names the key, its value and what is allowed."""
  datasets = config.data.get("datasets", ())
  if (isinstance(datasets, str) or not datasets
      or not all(isinstance(d, str) and d for d in datasets)):
    raise ValueError(f"data.datasets={datasets!r}: must be a tuple of one or more dataset "
                     "names, e.g. ('synthetic_me/micro',)")
  stand_ins.resolve(config.data)  # data.stand_in: a dataset without a stand-in is named
  labels_lib.check_spec(config.data.label_map)
  views.view_shape(config.data)
  for dotted in ("train.batch_size", "train.num_epochs", "eval.batch_size", "eval.every_epochs",
                 "checkpoint_every_epochs", "log_every_steps", "mesh.data"):
    _positive(config, dotted)
  for dotted in ("train.steps_per_epoch", "mesh.num_devices", "seed"):
    _positive(config, dotted, minimum=0)
  rate = config.train.learning_rate
  if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < float("inf"):
    raise ValueError(f"train.learning_rate={rate!r}: must be a number > 0")
  if config.model.name not in models.MODELS:
    raise ValueError(f"Unknown model {config.model.name!r} (config key model.name); known: "
                     f"{sorted(models.MODELS)}")
  needs_val = config.train.plateau_patience > 0 or config.train.early_stopping_patience > 0
  has_val = config.protocol.val_subjects > 0 or config.protocol.val_fraction > 0
  if needs_val and not has_val:
    raise ValueError("train.plateau_patience / train.early_stopping_patience need an inner "
                     "validation set: set protocol.val_subjects or protocol.val_fraction")
  optimizer(config, steps_per_epoch=1)  # an unknown optimizer / schedule fails here
  if config.train.get("loss", "cross_entropy") not in steps.LOSSES:
    raise ValueError(f"Unknown train.loss {config.train.loss!r}; known: {steps.LOSSES}")
  if config.train.fold_strategy not in steps.STRATEGIES + ("auto",):
    raise ValueError(f"Unknown train.fold_strategy {config.train.fold_strategy!r}; known: "
                     f"{steps.STRATEGIES + ('auto',)}")
  if config.train.get("fold_chunk", 0) < 0:
    raise ValueError(f"train.fold_chunk={config.train.fold_chunk} must be >= 0 (0: sized from "
                     "device memory)")
  compute_dtype(config)
  input_transform(config.data)
  smooth = config.train.get("smooth_probability", 0.0)
  if not 0 <= smooth <= 1 or (smooth and not config.train.get("smooth_sigma", 1.0) >= 0.5):
    raise ValueError(f"train.smooth_probability={smooth} must be in [0, 1] and "
                     f"train.smooth_sigma={config.train.get('smooth_sigma', 1.0)} >= 0.5 "
                     "(sigma ~ U(0.5, smooth_sigma))")
  if config.train.batch_size % config.mesh.data:
    raise ValueError(f"train.batch_size={config.train.batch_size} must be a multiple of "
                     f"mesh.data={config.mesh.data}")
  check_augmentation(config)
  from mejax import reports  # matplotlib: imported only where a run is checked
  reports.extra_metrics(config)


def check_augmentation(config: ml_collections.ConfigDict) -> None:
  """Refuses a training augmentation that does not apply to the view or the model, naming the
  key and why. Allowed: flips of region views (every box is symmetric about the face's midline)
  and of flow views (u is negated: `on_device.mirror`); smoothing of every view (linear, it
  keeps a flow's zero motion at zero)."""
  train, data = config.train, config.data
  flip = bool(train.get("flip", False))
  rotate = train.get("rotate_degrees", 0.0)
  if isinstance(rotate, bool) or not isinstance(rotate, (int, float)) or not 0 <= rotate <= 180:
    raise ValueError(f"train.rotate_degrees={rotate!r}: must be a number in [0, 180]")
  subsets = tuple(train.get("frame_subsets", ()))
  if not all(isinstance(r, (int, float)) and 0 < r <= 1 for r in subsets):
    raise ValueError(f"train.frame_subsets={subsets!r}: must be fractions in (0, 1] of the "
                     "clip's frames, e.g. (1.0, 0.9, 0.8)")
  name, view, regions = config.model.name, data.view, data.get("regions", "")
  if models.entry(name).fixed_pixels and (flip or rotate):
    key = f"train.flip={flip}" if flip else f"train.rotate_degrees={rotate}"
    raise ValueError(f"{key}: model {name!r} reads pixels at fixed positions, which a flip or a "
                     "rotation would move the face off; set it off")
  if rotate and view == "flow":
    raise ValueError(f"train.rotate_degrees={rotate}: rotating a flow view's pixels would leave "
                     "its (u, v) vectors pointing the old way; set it to 0")
  if rotate and regions:
    raise ValueError(f"train.rotate_degrees={rotate}: the data.regions={regions!r} crops are "
                     "stretched to squares, so rotating one about its centre shears the face; "
                     "set it to 0")
  if subsets and views.view_shape(data)[0] == 1:
    raise ValueError(f"train.frame_subsets={subsets}: the {view!r} view has one frame, none to "
                     "select; set it to ()")


def compute_dtype(config: ml_collections.ConfigDict):
  """model.dtype: the computation dtype ('float32', or 'bfloat16' on GPU); parameters, optimiser
  state and logits stay float32."""
  name = config.model.get("dtype", "float32")
  if name not in ("float32", "bfloat16", "float16"):
    raise ValueError(f"Unknown model.dtype {name!r}; known: 'float32', 'bfloat16', 'float16'")
  return jnp.dtype(name)


NORMALISATIONS = ("kinetics", "unit")


def input_transform(data: ml_collections.ConfigDict) -> on_device.InputTransform:
  """uint8 view -> model input on device, with constants that never depend on the data.

  data.normalisation 'kinetics' (default): the Kinetics-400 mean/std per RGB channel (their
  channel means for grey views, repeated over stacked regions); 'unit': x / 127.5 - 1 (flow
  fields, whose 128 is zero motion). Optionally relative to the first frame.
  """
  channels = views.view_shape(data)[-1]
  normalisation = data.get("normalisation", "kinetics")
  if normalisation == "unit":
    mean, std = (0.5,) * channels, (0.5,) * channels
  elif normalisation == "kinetics":
    rgb = not data.grey and data.view != "flow"
    mean, std = ((views.KINETICS_MEAN, views.KINETICS_STD) if rgb else
                 ((float(np.mean(views.KINETICS_MEAN)),), (float(np.mean(views.KINETICS_STD)),)))
    mean, std = mean * (channels // len(mean)), std * (channels // len(std))
  else:
    raise ValueError(f"Unknown data.normalisation {normalisation!r}; known: {NORMALISATIONS}")
  # A flow view's u changes sign when the clip is mirrored (train.flip).
  return on_device.InputTransform(tuple(map(float, mean)), tuple(map(float, std)),
                                  data.relative_to_first_frame,
                                  mirror_negated=(0,) if data.view == "flow" else ())


def learning_rate(config: ml_collections.ConfigDict, steps_per_epoch: int):
  """The rate of train.lr_schedule: 'constant', 'cosine' (decay to zero over all training
  steps) or 'exponential' (x train.lr_decay after every epoch, STRCN's 0.8).

  Reduce-on-plateau scales whichever it is.
  """
  rate, schedule = config.train.learning_rate, config.train.lr_schedule
  if schedule == "constant":
    return rate
  if schedule == "cosine":
    return optax.cosine_decay_schedule(rate, config.train.num_epochs * steps_per_epoch)
  if schedule == "exponential":
    return optax.exponential_decay(rate, transition_steps=steps_per_epoch,
                                   decay_rate=config.train.get("lr_decay", 0.8), staircase=True)
  raise ValueError(f"Unknown train.lr_schedule {schedule!r}; known: 'constant', 'cosine', "
                   "'exponential'")


OPTIMIZERS = ("adam", "sgd")


def optimizer(config: ml_collections.ConfigDict, steps_per_epoch: int):
  """train.optimizer 'adam' (default) or 'sgd' (train.momentum, the papers' Keras SGD), with
  train.weight_decay added to the gradient (L2 as Keras' regularisers and PyTorch's SGD do)."""
  rate = learning_rate(config, steps_per_epoch)
  name = config.train.get("optimizer", "adam")
  if name == "adam":
    tx = optax.adam(rate)
  elif name == "sgd":
    tx = optax.sgd(rate, momentum=config.train.get("momentum", 0.0) or None)
  else:
    raise ValueError(f"Unknown train.optimizer {name!r}; known: {OPTIMIZERS}")
  weight_decay = config.train.get("weight_decay", 0.0)
  return optax.chain(optax.add_decayed_weights(weight_decay), tx) if weight_decay else tx


# ---- the sweep -----------------------------------------------------------------------------------

def padded_lanes(fold_ids: list[int], mesh) -> list[int]:
  """The fold of every lane of the fold axis: `fold_ids`, padded to fill the mesh by repeating
  the first fold (padded lanes compute and are discarded)."""
  count = sharding.padded_fold_count(len(fold_ids), mesh)
  return list(fold_ids) + [fold_ids[0]] * (count - len(fold_ids))


@dataclasses.dataclass
class Sweep:
  """The model, optimiser, per-fold data and steps of F lanes on a mesh (see `build`)."""
  config: ml_collections.ConfigDict
  mesh: Any
  lanes: list[int]             # fold index of every lane
  num_real: int                # the first num_real lanes are real folds; the rest padding
  model: Any
  tx: Any
  dtype: Any
  to_input: on_device.InputTransform
  fold_data: steps.FoldData    # on the devices, fold-sharded
  steps_per_epoch: int
  keep_best: bool
  sample_input: Any            # zeros (1, T, H, W, C): fixes the model's variable shapes
  strategy: str
  train_mask: np.ndarray       # bool [lanes, N]

  @property
  def fold_sharding(self):
    return sharding.fold_sharded(self.mesh)

  @property
  def replicated(self):
    return sharding.replicated(self.mesh)

  def _init(self, pretrained):
    return jax.jit(lambda keys, imported: steps.init_state(
        self.model, self.tx, keys, self.sample_input, self.keep_best, imported),
                   out_shardings=self.fold_sharding)

  def abstract_state(self, pretrained=None):
    """The state's tree of ShapeDtypeStructs (nothing computed), with the fold sharding."""
    abstract = jax.eval_shape(self._init(pretrained), self.fold_data.fold_key, pretrained)
    fold_sh = self.fold_sharding
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=fold_sh), abstract)

  def init_state(self, view: np.ndarray, pretrained=None) -> steps.TrainState:
    """Every lane's initial state: its own random initialisation (or `pretrained`, the same in
    every lane) and the model's per-fold constants from the lane's training clips of `view`."""
    state = self._init(pretrained)(self.fold_data.fold_key, pretrained)
    fold_constants = models.entry(self.config.model.name).fold_constants
    if fold_constants is None:
      return state
    host = jax.tree_util.tree_map(np.asarray, state.constants)
    constants = fold_constants(view, self.train_mask, host)
    return state.replace(constants=jax.device_put(constants, self.fold_sharding))

  def train_program(self, fold_chunk: int, view_variants: bool = False) -> steps.FoldProgram:
    c = self.config
    return steps.make_train_step(
        self.model, self.tx, batch_size=c.train.batch_size, to_input=self.to_input,
        flip=c.train.flip, rotate_degrees=c.train.rotate_degrees, mesh=self.mesh,
        strategy=self.strategy, fold_chunk=fold_chunk, compute_dtype=self.dtype,
        loss=c.train.get("loss", "cross_entropy"),
        frame_subsets=tuple(c.train.get("frame_subsets", ())), view_variants=view_variants,
        smoothing=(c.train.get("smooth_probability", 0.0), c.train.get("smooth_sigma", 1.0)))

  def eval_program(self, fold_chunk: int, use_best: bool = False) -> steps.FoldProgram:
    return steps.make_eval_step(self.model, to_input=self.to_input, mesh=self.mesh,
                                strategy=self.strategy, fold_chunk=fold_chunk, use_best=use_best,
                                compute_dtype=self.dtype)

  def resident_bytes(self, abstract_state, inputs: np.ndarray,
                     train_inputs: np.ndarray | None) -> tuple[int, int]:
    """(state, data) bytes that stay on each device for the whole run."""
    shards = self.mesh.shape[sharding.FOLD]
    data = (inputs.nbytes + (train_inputs.nbytes if train_inputs is not None else 0)
            + memory.tree_bytes(self.fold_data) // shards)
    return memory.tree_bytes(abstract_state) // shards, data

  def compile_train_step(self, state, inputs, train_inputs, labels, free_bytes: int | None,
                         resident: tuple[int, int]) -> tuple[int, steps.FoldProgram]:
    """(fold chunk, compiled train step): the largest chunk of a device's folds whose compiled
    step fits beside the resident state and data (or `train.fold_chunk` when set)."""
    variants = train_inputs is not inputs
    folds_per_device = len(self.lanes) // self.mesh.shape[sharding.FOLD]

    def compile_step(chunk):
      return self.train_program(chunk, variants).compile(state, self.fold_data, train_inputs,
                                                         labels)

    if self.strategy == "loop":  # one fold's program at a time: no chunk to choose
      return 1, compile_step(1)
    chunk, program, need = memory.choose_fold_chunk(
        lambda chunk: compile_step(chunk), folds_per_device, free_bytes,
        requested=self.config.train.get("fold_chunk", 0), resident_bytes=sum(resident))
    log.info("Fold execution: %s", memory.Plan(folds_per_device, chunk, resident[0], resident[1],
                                               need, free_bytes).describe())
    return chunk, program


def keeps_best(config: ml_collections.ConfigDict, val_mask: np.ndarray | None) -> bool:
  """Whether each fold keeps a copy of its best inner-validation state (and reports it): early
  stopping with `train.restore_best`, and a non-empty validation set (`val_mask` of the lanes)."""
  has_val = val_mask is not None and bool(np.asarray(val_mask).any())
  return bool(config.train.early_stopping_patience and config.train.restore_best and has_val)


def state_template(config: ml_collections.ConfigDict, num_classes: int,
                   input_shape: tuple[int, ...], num_lanes: int, keep_best: bool):
  """(model, the fold-stacked TrainState of `num_lanes` lanes as ShapeDtypeStructs): the tree a
  checkpoint of this config holds, computed without data or devices."""
  model = models.from_config(config.model, num_classes, compute_dtype(config))
  tx = optimizer(config, steps_per_epoch=1)  # the schedule's length does not change the tree
  sample = jnp.zeros((1,) + tuple(input_shape), jnp.float32)
  keys = jax.ShapeDtypeStruct((num_lanes,) + jax.random.PRNGKey(0).shape, jnp.uint32)
  return model, jax.eval_shape(lambda k: steps.init_state(model, tx, k, sample, keep_best), keys)


def build(config: ml_collections.ConfigDict, num_classes: int, input_shape: tuple[int, ...], *,
          mesh, labels: np.ndarray, train_mask: np.ndarray, fold_ids: list[int],
          val_mask: np.ndarray | None = None, strategy: str | None = None) -> Sweep:
  """The sweep of `config` training folds `fold_ids` (rows of `train_mask` / `val_mask` [F, N]
  over clips with `labels` [N]) on `mesh`, for clips of `input_shape` (T, H, W, C).

  train_mask holds every fold of the protocol, trained here or not: train.steps_per_epoch=0
  takes the largest of all their training sets.

  strategy: the fold strategy; None resolves `train.fold_strategy` for the mesh's backend.
  """
  lanes = padded_lanes(fold_ids, mesh)
  lane_train = np.asarray(train_mask)[lanes]
  counts = on_device.class_counts(labels, lane_train, num_classes)
  loss_weights = (on_device.inverse_frequency_weights(counts) if config.train.class_weighted_loss
                  else np.ones_like(counts, np.float32))
  fold_data = steps.FoldData(
      fold_key=jnp.stack([jax.random.fold_in(jax.random.PRNGKey(config.seed), f) for f in lanes]),
      sample_probs=on_device.sampling_probabilities(labels, lane_train, counts,
                                                    config.train.balanced_sampling),
      loss_weights=loss_weights)
  # From every fold of the protocol, not only the trained ones: a fold trained alone
  # (train.only_folds) takes the steps, schedule and results it has in the whole sweep.
  largest_train = int(np.asarray(train_mask).sum(1).max())
  steps_per_epoch = config.train.steps_per_epoch or math.ceil(largest_train /
                                                              config.train.batch_size)
  dtype = compute_dtype(config)
  if strategy is None:
    strategy = steps.resolve_strategy(config.train.fold_strategy, mesh.devices.flat[0].platform,
                                      mesh.size)
  return Sweep(
      config=config, mesh=mesh, lanes=lanes, num_real=len(fold_ids),
      model=models.from_config(config.model, num_classes, dtype),
      tx=optimizer(config, steps_per_epoch), dtype=dtype,
      to_input=input_transform(config.data),
      fold_data=jax.device_put(fold_data, sharding.fold_sharded(mesh)),
      steps_per_epoch=steps_per_epoch,
      keep_best=keeps_best(config, None if val_mask is None else np.asarray(val_mask)[lanes]),
      sample_input=jnp.zeros((1,) + tuple(input_shape), jnp.float32), strategy=strategy,
      train_mask=lane_train)
