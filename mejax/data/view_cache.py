"""A cache of built views: training and benchmarks without TensorFlow.

Reading TFRecords needs TensorFlow, which GPU images often lack (and which must not take GPU
memory beside JAX). A view (the uint8 model input of every clip) plus the clip metadata is all
training needs, so the first run writes them to `<data_dir>/mejax_views/<key>.npz` and later runs,
on this machine or on one the data dir was copied to, read that file with numpy alone.

The key covers what the view depends on: datasets, label map, view kind, frames, size, colour.
The file also records each dataset's `dataset_info.json` digest; a dataset rebuilt since (its
digest changed) makes the cache stale and the view is rebuilt from the TFRecords. Where the
TFRecords are absent (only `mejax_views/` was copied), the cache is used as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import tempfile

import numpy as np

from mejax.data import clipset as clipset_lib
from mejax.data import composites
from mejax.data import dataset_names
from mejax.data import views
from mejax.data.clipset import ClipSet

log = logging.getLogger(__name__)

# 2: magnified views filter the stored span, then select frames (1 selected, then filtered).
FORMAT = 2
_ARRAYS = ("sample_id", "dataset", "subject", "emotion", "action_units", "objective_class", "fps",
           "onset", "apex", "offset", "label")


def _version_key(name: str):
  return tuple(int(p) if p.isdigit() else p for p in name.split("."))


def dataset_info_path(name: str, data_dir: str) -> pathlib.Path | None:
  """`<data_dir>/<dataset>/<config>/<version>/dataset_info.json` of the version TFDS would load
  (the one named after ':' or the newest on disk), found without TensorFlow."""
  _, _, version, _ = dataset_names.parse(name)
  root = pathlib.Path(data_dir, *dataset_names.storage_path(name).split("/"))
  if version:
    path = root / version / "dataset_info.json"
    return path if path.exists() else None
  versions = sorted((p for p in root.glob("*/dataset_info.json")),
                    key=lambda p: _version_key(p.parent.name))
  return versions[-1] if versions else None


def _digest(path: pathlib.Path | None) -> str | None:
  return None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


def cache_path(data) -> pathlib.Path:
  """The cache file of a `config.data` (datasets, label map and view settings)."""
  key = {"format": FORMAT, "datasets": list(data.datasets), "label_map": data.label_map,
         "view": data.view, "num_frames": data.num_frames, "size": data.size,
         "grey": bool(data.grey)}
  for name in ("selection", "regions", "magnify_alpha", "flow_range", "flow_method", "flow_strain",
               "strain_range"):
    if data.get(name, None):  # only when set: keys of the plain frame views stay as they were
      key[name] = data[name]
  digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
  return pathlib.Path(data.data_dir, "mejax_views", f"{digest}.npz")


def save(path: pathlib.Path, clips: ClipSet, view: np.ndarray, data) -> None:
  """Writes the view and metadata atomically (a half-written cache is never read)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  meta = {"format": FORMAT, "class_names": list(clips.class_names), "sources": list(clips.sources),
          "dropped": clips.dropped,
          "dataset_info": {n: _digest(dataset_info_path(n, data.data_dir)) for n in data.datasets}}
  with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as f:
    np.savez(f, view=view, meta=np.asarray(json.dumps(meta)),
             **{k: getattr(clips, k) for k in _ARRAYS})
  os.replace(f.name, path)
  log.info("Cached the view of %s in %s", ",".join(data.datasets), path)


def make_view(clips: ClipSet, data) -> np.ndarray:
  """The view a `config.data` section asks for."""
  return views.make_view(clips, data)


def load_or_build(data, write: bool = True) -> tuple[ClipSet, np.ndarray]:
  """(ClipSet, view) of a `config.data`: from its cache when one matches (numpy only), else from
  the TFRecords, then cached (`write`: this process writes it; `data.view_cache=False`: never)."""
  return _load_or_build(data, write, _ClipSource(data))


def load_or_build_with_variants(data, write: bool = True
                                ) -> tuple[ClipSet, np.ndarray, np.ndarray | None]:
  """(ClipSet, view, training variants [K, N, ...] or None) of a `config.data`.

  The variants are the same view at each of `data.train_magnify_alphas` (STRCN's magnification
  factors), each cached like a view of its own; the TFRecords are read at most once for all.
  """
  source = _ClipSource(data)
  clips, view = _load_or_build(data, write, source)
  variants = []
  for variant in variant_configs(data):
    variant_clips, variant_view = _load_or_build(variant, write, source)
    _check_same_clips(clips, variant_clips, variant)
    variants.append(variant_view)
  return clips, view, (np.stack(variants) if variants else None)


def make_variants(clips: ClipSet, data) -> np.ndarray | None:
  """The training variants of `load_or_build_with_variants`, built from loaded clips."""
  variants = [make_view(clips, variant) for variant in variant_configs(data)]
  return np.stack(variants) if variants else None


def variant_configs(data) -> list:
  """One `config.data` per training magnification factor (`data.train_magnify_alphas`): the
  evaluated view with its `magnify_alpha` replaced."""
  alphas = tuple(data.get("train_magnify_alphas", ()) or ())
  bad = [a for a in alphas if not float(a) >= 0]
  if bad:
    raise ValueError(f"data.train_magnify_alphas must be >= 0, got {bad}")
  out = []
  for alpha in alphas:
    variant = data.copy_and_resolve_references()
    with variant.unlocked():  # --config files load locked
      variant.magnify_alpha = float(alpha)
      variant.train_magnify_alphas = ()
    out.append(variant)
  return out


class _ClipSource:
  """The ClipSet of a `config.data` read from the TFRecords on first use, then kept."""

  def __init__(self, data):
    self._data, self._clips = data, None

  def __call__(self) -> ClipSet:
    if self._clips is None:
      data = self._data
      clips = clipset_lib.load(data.datasets, data.data_dir, data.label_map)
      self._clips = composites.select(clips, data.get("selection", ""))
    return self._clips


def _check_same_clips(clips: ClipSet, other: ClipSet, variant) -> None:
  if not np.array_equal(clips.uid, other.uid):
    raise ValueError(
        f"The cached view {cache_path(variant)} (magnify_alpha {variant.magnify_alpha}) holds "
        "other clips than the evaluated view; delete it (or set data.view_cache=False) to rebuild "
        "both from the TFRecords")


def _load_or_build(data, write: bool, source: _ClipSource) -> tuple[ClipSet, np.ndarray]:
  use_cache = data.get("view_cache", True)
  path = cache_path(data)
  cached = load(path, data) if use_cache else None
  if cached is not None:
    log.info("View read from the cache %s", path)
    return cached
  clips = source()
  view = make_view(clips, data)
  if use_cache and write:
    try:
      save(path, clips, view, data)
    except OSError as e:  # a read-only data dir costs a rebuild next time, nothing else
      log.warning("Could not write the view cache %s: %s", path, e)
  return clips, view


def load(path: pathlib.Path, data) -> tuple[ClipSet, np.ndarray] | None:
  """The cached (ClipSet, view), or None when there is no cache or a dataset changed since.

  The ClipSet's `frames` are the view's clips (its original frames are not cached).
  """
  if not path.exists():
    return None
  try:
    with np.load(path, allow_pickle=False) as z:
      meta = json.loads(str(z["meta"]))
      arrays = {k: z[k] for k in _ARRAYS}
      view = z["view"]
  except (OSError, ValueError, KeyError) as e:
    log.warning("Ignoring the unreadable view cache %s (%s); rebuilding it", path, e)
    return None
  if meta.get("format") != FORMAT:
    return None
  for name, digest in meta["dataset_info"].items():
    now = _digest(dataset_info_path(name, data.data_dir))
    if now is not None and now != digest:
      log.warning("%s was rebuilt since its view was cached in %s; rebuilding the view", name, path)
      return None
  clips = ClipSet(frames=list(view), class_names=tuple(meta["class_names"]),
                  sources=tuple(meta["sources"]), dropped=meta["dropped"], **arrays)
  return clips, view
