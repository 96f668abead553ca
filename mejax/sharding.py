"""Device mesh ('fold', 'data') and the shardings of the fold-stacked state and data."""

from __future__ import annotations

import math
from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

FOLD, DATA = "fold", "data"


def make_mesh(data_parallel: int = 1, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 2-D mesh: folds spread over `len(devices) // data_parallel` rows, minibatches over columns.

  Built with `Mesh(...)` (Auto axis types): `jax.make_mesh` defaults to Explicit axes, under which
  a vmapped conv step over a fold-sharded state fails to reshape.
  """
  devices = list(jax.devices() if devices is None else devices)
  if data_parallel < 1 or len(devices) % data_parallel:
    raise ValueError(f"mesh.data={data_parallel} must divide the number of devices ({len(devices)})")
  grid = np.asarray(devices, dtype=object).reshape(len(devices) // data_parallel, data_parallel)
  return Mesh(grid, (FOLD, DATA))


def padded_fold_count(num_folds: int, mesh: Mesh) -> int:
  """Folds are padded to a multiple of the fold axis so every device holds the same number."""
  per = mesh.shape[FOLD]
  return int(math.ceil(num_folds / per) * per)


def fold_sharded(mesh: Mesh) -> NamedSharding:
  """Leading fold axis split over 'fold'; everything else replicated."""
  return NamedSharding(mesh, P(FOLD))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Per-fold minibatch (inside the fold vmap) split over 'data'."""
  return NamedSharding(mesh, P(DATA))
