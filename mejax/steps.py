"""Pure train / eval steps over a leading fold axis.

A fold's step is written for one fold, then vmapped (or `lax.map`ped) over the fold axis and
jitted with the state sharded over the mesh's 'fold' axis. All randomness of fold f at step s is
`fold_in(fold_in(seed, f), s)`, so a fold's trajectory does not depend on the folds beside it and
a resumed run repeats the steps it would have taken.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mejax import sharding
from mejax.data import on_device

PyTree = Any
# The variable collection of per-fold constants (`TrainState.constants`).
CONSTANTS = "constants"


@flax.struct.dataclass
class TrainState:
  """State of every fold, each leaf with a leading fold axis [F, ...]."""
  step: jax.Array            # [F] int32, optimiser steps taken
  params: PyTree
  batch_stats: PyTree
  # Per-fold non-trainable values the model derives from its fold's training clips before the
  # first step (`mejax.models` registry: `fold_constants`), e.g. STRCN-A's pixel selection.
  constants: PyTree
  opt_state: PyTree
  lr_scale: jax.Array        # [F] reduce-on-plateau multiplier of the learning rate
  best_val_loss: jax.Array   # [F] best inner-validation loss so far (inf before the first)
  plateau_wait: jax.Array    # [F] epochs without improvement since the last lr change
  stop_wait: jax.Array       # [F] epochs without improvement (early stopping)
  stopped: jax.Array         # [F] bool: early stopping froze this fold
  best_params: PyTree        # params / batch_stats at the best validation loss (or None)
  best_batch_stats: PyTree


@flax.struct.dataclass
class FoldData:
  """Per-fold constants of training, each [F, ...], sharded like the state."""
  fold_key: jax.Array          # [F] PRNG keys: fold_in(seed, fold_id)
  sample_probs: jax.Array      # [F, N] class-weighted sampling distribution over train samples
  loss_weights: jax.Array      # [F, C] class weights of the cross-entropy


def weighted_cross_entropy(logits, labels, class_weights, valid=None):
  """Class-weighted mean cross-entropy (PyTorch's CrossEntropyLoss(weight=...) convention)."""
  ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
  w = class_weights[labels]
  if valid is not None:
    w = w * valid
  return jnp.sum(ce * w) / jnp.maximum(jnp.sum(w), 1e-12)


def batch_balanced_cross_entropy(logits, labels, num_classes: int):
  """STRCN's multi-class balanced loss (Xia et al. §III-E, eqs. 9-10, read as the usual softmax
  cross-entropy): sample i weighs beta_i = B / (K * n_{y_i}), n_c being class c's count in the
  minibatch and K the classes present, so a balanced batch has every beta = 1 and the betas sum
  to B. Averaged over the batch (the paper sums; its learning rates assume the sum)."""
  ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
  counts = jnp.sum(jax.nn.one_hot(labels, num_classes), axis=0)
  present = jnp.sum(counts > 0)
  beta = labels.shape[0] / (present * counts[labels])
  return jnp.mean(beta * ce)


LOSSES = ("cross_entropy", "balanced")


def init_state(model: nn.Module, tx: optax.GradientTransformation, fold_keys: jax.Array,
               sample_input: jax.Array, keep_best: bool,
               pretrained: dict[tuple[str, ...], jax.Array] | None = None) -> TrainState:
  """Initialises every fold's model from its own key (vmapped; call under jit).

  pretrained: {(collection, *path): array} of imported weights (`init_from`), the same in every
  fold; the variables they name replace the random initialisation.
  """

  def one(key):
    variables = model.init({"params": key}, sample_input, train=False)
    if pretrained:
      flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
      flat.update({path: jnp.asarray(value, flat[path].dtype)
                   for path, value in pretrained.items()})
      variables = flax.traverse_util.unflatten_dict(flat)
    params = variables["params"]
    batch_stats = variables.get("batch_stats", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
        constants=variables.get(CONSTANTS, {}), opt_state=tx.init(params),
        lr_scale=jnp.ones((), jnp.float32),
        best_val_loss=jnp.full((), jnp.inf, jnp.float32),
        plateau_wait=jnp.zeros((), jnp.int32), stop_wait=jnp.zeros((), jnp.int32),
        stopped=jnp.zeros((), bool),
        best_params=params if keep_best else None,
        best_batch_stats=batch_stats if keep_best else None)

  init_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0xC0FFEE))(fold_keys)
  return jax.vmap(one)(init_keys)


def _take(tree, index):
  return jax.tree_util.tree_map(lambda x: jax.lax.dynamic_index_in_dim(x, index, keepdims=False),
                                tree)


STRATEGIES = ("vmap", "map", "loop")


@dataclasses.dataclass(frozen=True)
class FoldProgram:
  """A one-fold function mapped over the fold axis: call it like the function it maps.

  `lower(*args)` gives XLA's program and `compile(*args)` a FoldProgram running the compiled one.
  For 'loop' that program is the one-fold step with the fold index as its first argument, called
  once per fold from Python; otherwise it is the whole fold-stacked step.
  """
  strategy: str
  program: Callable            # jitted (or compiled) program
  in_axes: tuple
  donate: tuple = ()

  @property
  def looped(self) -> bool:
    return self.strategy == "loop"

  def lower(self, *args):
    return self.program.lower(np.int32(0), *args) if self.looped else self.program.lower(*args)

  def compile(self, *args) -> "FoldProgram":
    return dataclasses.replace(self, program=self.lower(*args).compile())

  def __call__(self, *args):
    if not self.looped:
      return self.program(*args)
    num_folds = jax.tree_util.tree_leaves(args[self.in_axes.index(0)])[0].shape[0]
    outs = []
    for index in range(num_folds):
      out = self.program(np.int32(index), *args)
      if self.donate:
        args = list(args)
        args[self.donate[0]] = out[0]
        out = out[1:]
      outs.append(out)
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outs)
    return (args[self.donate[0]], *stacked) if self.donate else stacked


def _over_folds(fn: Callable, strategy: str, in_axes: tuple, mesh, in_shardings, out_shardings,
                donate: tuple = (), fold_chunk: int = 0) -> FoldProgram:
  """Maps a one-fold function over the fold axis and jits it.

  'vmap': one program; per-fold kernels become grouped convolutions (the accelerator default).
    `fold_chunk` > 0 bounds memory: each device's folds run `fold_chunk` at a time (vmapped),
    the chunks one after another (`lax.map` with a batch size), so activations scale with the
    chunk, not with the number of folds.
  'map': one program looping over each device's folds one at a time (a chunk of 1).
  'loop': one program for one fold (picked by a traced index), called once per fold from Python.
    On XLA:CPU both one-program forms ran ~4-7x slower than the sum of single-fold steps
    (docs/benchmarks.md), so CPU runs loop. Single device only.
  """
  if strategy in ("vmap", "map"):
    shards = mesh.shape[sharding.FOLD]
    chunk = 1 if strategy == "map" else fold_chunk

    def chunked(*args):
      # [F, ...] -> [shards, F / shards, ...]: a device's folds become a local axis to loop over
      # (block sharding of F keeps this reshape free of communication).
      split = lambda a: a.reshape((shards, a.shape[0] // shards) + a.shape[1:])
      local = jax.tree_util.tree_leaves(args[in_axes.index(0)])[0].shape[0] // shards

      def device_fn(*dev_args):
        folded = tuple(a for a, ax in zip(dev_args, in_axes) if ax == 0)

        def body(xs):
          it = iter(xs)
          return fn(*[next(it) if ax == 0 else a for a, ax in zip(dev_args, in_axes)])
        return jax.lax.map(body, folded, batch_size=None if chunk == 1 else chunk)

      if chunk == 0 or chunk >= local:
        return jax.vmap(fn, in_axes=in_axes, spmd_axis_name=sharding.FOLD)(*args)
      split_args = [jax.tree_util.tree_map(split, a) if ax == 0 else a
                    for a, ax in zip(args, in_axes)]
      out = jax.vmap(device_fn, in_axes=in_axes, spmd_axis_name=sharding.FOLD)(*split_args)
      return jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:]), out)
    return FoldProgram(strategy, jax.jit(chunked, in_shardings=in_shardings,
                                         out_shardings=out_shardings, donate_argnums=donate),
                       in_axes, donate)
  if strategy == "loop":
    if mesh.size > 1:
      raise ValueError("train.fold_strategy='loop' runs on one device; use 'vmap' or 'map' with "
                       f"{mesh.size} devices (or mesh.num_devices=1)")

    def one_fold(index, *args):
      out = fn(*[_take(a, index) if ax == 0 else a for a, ax in zip(args, in_axes)])
      if not donate:
        return out
      # Write the fold's new state back in place into the donated stacked state.
      state, *rest = out
      full = args[donate[0]]
      state = jax.tree_util.tree_map(
          lambda f, p: jax.lax.dynamic_update_index_in_dim(f, p, index, 0), full, state)
      return (state, *rest)

    return FoldProgram(strategy, jax.jit(one_fold, donate_argnums=tuple(d + 1 for d in donate)),
                       in_axes, donate)
  raise ValueError(f"Unknown fold strategy {strategy!r}; known: {STRATEGIES} or 'auto'")


def resolve_strategy(strategy: str, platform: str, num_devices: int) -> str:
  """'auto' -> the fold strategy measured fastest for this backend (docs/benchmarks.md).

  XLA:CPU runs one single-fold program per fold ~4x faster than one vmapped program of all folds
  (grouped convolutions are slow there), so one CPU device loops; several devices need one
  program. Accelerators take the vmapped program (one launch, the fold axis fills the device).
  """
  if strategy != "auto":
    return strategy
  if platform == "cpu" and num_devices == 1:
    return "loop"
  return "vmap"


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, *, batch_size: int,
                    to_input: on_device.InputTransform, flip: bool, rotate_degrees: float,
                    mesh, strategy: str = "vmap", fold_chunk: int = 0,
                    compute_dtype=jnp.float32, loss: str = "cross_entropy",
                    frame_subsets: tuple[float, ...] = (), view_variants: bool = False,
                    smoothing: tuple[float, float] = (0.0, 1.0)):
  """Returns jitted `train_step(state, fold_data, inputs, labels) -> (state, metrics)`.

  inputs: the whole view, uint8 [N, T, H, W, C], replicated on every device; labels: int32 [N].
  view_variants: inputs is [K, N, T, H, W, C], K versions of the view (STRCN's magnification
  factors); each drawn sample takes one of them at random.
  smoothing: (probability, max sigma) of the Gaussian smoothing augmentation; 0: off.
  metrics: per fold {'loss', 'accuracy'} of the sampled minibatch, each [F].
  """
  data_parallel = mesh.shape[sharding.DATA] > 1
  if loss not in LOSSES:
    raise ValueError(f"Unknown train.loss {loss!r}; known: {LOSSES}")

  def fold_step(state: TrainState, data: FoldData, inputs, labels):
    key = jax.random.fold_in(data.fold_key, state.step)
    sample_key, augment_key = jax.random.split(key)
    dropout_key = jax.random.fold_in(key, 0xD0)  # a stream of its own: the others stay as they were
    idx = on_device.sample_indices(sample_key, data.sample_probs, batch_size)
    if data_parallel:
      idx = jax.lax.with_sharding_constraint(idx, sharding.batch_sharded(mesh))
    # Variants draw from a stream of their own, like frame_subsets below.
    x = to_input(on_device.gather_clips(jax.random.fold_in(key, 0xA1), inputs, idx,
                                        view_variants))
    x = on_device.augment(augment_key, x, flip, rotate_degrees, to_input.mirror_centres)
    x = on_device.smooth(jax.random.fold_in(key, 0x5A), x, *smoothing)
    if frame_subsets:  # a stream of its own, so configs without it draw what they always drew
      x = on_device.frame_subset(jax.random.fold_in(key, 0xF5), x, tuple(frame_subsets))
    x = x.astype(compute_dtype)
    y = labels[idx]

    def loss_fn(params):
      variables = {"params": params, "batch_stats": state.batch_stats,
                   CONSTANTS: state.constants}
      logits, updated = model.apply(variables, x, train=True, mutable=["batch_stats"],
                                    rngs={"dropout": dropout_key})
      if loss == "balanced":
        value = batch_balanced_cross_entropy(logits, y, data.loss_weights.shape[-1])
      else:  # class weights of the fold (all 1 without train.class_weighted_loss)
        value = weighted_cross_entropy(logits, y, data.loss_weights)
      # Models without BatchNorm (STCNN, FuseNet) have no statistics to update.
      return value, (logits, updated.get("batch_stats", state.batch_stats))

    (value, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    # For Adam, scaling the update is scaling the learning rate (reduce-on-plateau).
    updates = jax.tree_util.tree_map(lambda u: u * state.lr_scale, updates)
    params = optax.apply_updates(state.params, updates)
    new = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                        opt_state=opt_state)
    # An early-stopped fold keeps its state; its lane still computes (folds run in lockstep).
    new = jax.tree_util.tree_map(lambda n, o: jnp.where(state.stopped, o, n), new, state)
    accuracy = jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32))
    return new, {"loss": value, "accuracy": accuracy}

  fold, repl = sharding.fold_sharded(mesh), sharding.replicated(mesh)
  return _over_folds(fold_step, strategy, (0, 0, None, None), mesh,
                     in_shardings=(fold, fold, repl, repl), out_shardings=(fold, fold),
                     donate=(0,), fold_chunk=fold_chunk)


def make_eval_step(model: nn.Module, *, to_input: on_device.InputTransform, mesh,
                   strategy: str = "vmap", fold_chunk: int = 0,
                   use_best: bool = False, compute_dtype=jnp.float32):
  """Returns jitted `eval_step(state, indices[F, M], inputs) -> logits [F, M, C]` (float32)."""

  def fold_eval(state: TrainState, idx, inputs):
    params = state.best_params if use_best else state.params
    batch_stats = state.best_batch_stats if use_best else state.batch_stats
    x = to_input(inputs[idx]).astype(compute_dtype)
    logits = model.apply({"params": params, "batch_stats": batch_stats,
                          CONSTANTS: state.constants}, x, train=False)
    return logits.astype(jnp.float32)

  fold, repl = sharding.fold_sharded(mesh), sharding.replicated(mesh)
  return _over_folds(fold_eval, strategy, (0, 0, None), mesh, in_shardings=(fold, fold, repl),
                     out_shardings=fold, fold_chunk=fold_chunk)


@functools.partial(jax.jit, static_argnames=("plateau", "early_stopping", "keep_best"))
def update_on_validation(state: TrainState, val_loss: jax.Array, *, plateau: tuple | None,
                         early_stopping: int | None, keep_best: bool) -> TrainState:
  """End-of-epoch decisions from each fold's inner-validation loss [F] (never the test fold).

  plateau: (patience, factor, min_scale) of reduce-on-plateau; early_stopping: its patience.
  Improvement uses PyTorch's default relative threshold (1e-4).
  """
  active = ~state.stopped
  improved = (val_loss < state.best_val_loss * (1 - 1e-4)) & active
  best_val_loss = jnp.where(improved, val_loss, state.best_val_loss)
  new = state.replace(best_val_loss=best_val_loss)
  if keep_best:
    pick = lambda b, p: jnp.where(improved.reshape((-1,) + (1,) * (p.ndim - 1)), p, b)
    new = new.replace(best_params=jax.tree_util.tree_map(pick, state.best_params, state.params),
                      best_batch_stats=jax.tree_util.tree_map(pick, state.best_batch_stats,
                                                              state.batch_stats))
  if plateau is not None:
    patience, factor, min_scale = plateau
    wait = jnp.where(improved, 0, state.plateau_wait + active.astype(jnp.int32))
    reduce = wait >= patience
    new = new.replace(lr_scale=jnp.where(reduce, jnp.maximum(state.lr_scale * factor, min_scale),
                                         state.lr_scale),
                      plateau_wait=jnp.where(reduce, 0, wait))
  if early_stopping is not None:
    wait = jnp.where(improved, 0, state.stop_wait + active.astype(jnp.int32))
    new = new.replace(stop_wait=wait, stopped=state.stopped | (wait >= early_stopping))
  return new


def gather_padded(index_lists: list[np.ndarray], multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """Per-fold index lists -> ([F, M] indices, [F, M] validity), M padded to a multiple.

  Padding repeats index 0 and is marked invalid; evaluation ignores it.
  """
  longest = max([len(ix) for ix in index_lists] + [1])
  longest = int(np.ceil(longest / multiple) * multiple)
  idx = np.zeros((len(index_lists), longest), np.int32)
  valid = np.zeros((len(index_lists), longest), bool)
  for f, ix in enumerate(index_lists):
    idx[f, :len(ix)] = ix
    valid[f, :len(ix)] = True
  return idx, valid
