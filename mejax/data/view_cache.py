"""A cache of built views: training and benchmarks without TensorFlow.

Reading TFRecords needs TensorFlow, which GPU images often lack (and which must not take GPU
memory beside JAX). A view (the uint8 model input of every clip) plus the clip metadata is all
training needs, so the first run writes them to `<data_dir>/mejax_views/<key>.npz` and later runs,
on this machine or on one the data dir was copied to, read that file with numpy alone.

The key covers what the view depends on: datasets, label map, view kind, frames, size, colour.
The file also records each dataset's `dataset_info.json` digest; a dataset rebuilt since (its
digest changed) makes the cache stale and the view is rebuilt from the TFRecords. Where the
TFRecords are absent (only `mejax_views/` was copied), the cache is used as it is.

A damaged cache file (cut short, garbled, arrays missing or of the wrong shape) is read whole and
checked before use: it is reported and rebuilt from the TFRecords, or, where they are absent, an
error names it and says how to get a good copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import pathlib

import numpy as np

from mejax import files
from mejax.data import clipset as clipset_lib
from mejax.data import composites
from mejax.data import labels as labels_lib
from mejax.data import stand_ins
from mejax.data import views
from mejax.data.clipset import ClipSet

log = logging.getLogger(__name__)

# 2: magnified views filter the stored span, then select frames (1 selected, then filtered).
FORMAT = 2
_ARRAYS = ("sample_id", "dataset", "subject", "emotion", "action_units", "objective_class", "fps",
           "onset", "apex", "offset", "label")
# The numpy dtype kind of each metadata array: text, integers, floats.
_ARRAY_KINDS = {"sample_id": "U", "dataset": "U", "subject": "U", "emotion": "U",
                "action_units": "U", "objective_class": "i", "fps": "f", "onset": "i", "apex": "i",
                "offset": "i", "label": "i"}
_META_TYPES = {"format": int, "class_names": list, "sources": list, "dropped": list,
               "dataset_info": dict}


class ViewCacheError(ValueError):
  """A view cache that cannot be used where there is nothing to rebuild it from; the message
  names the file and how to get a good one."""


def dataset_info_path(name: str, data_dir: str) -> pathlib.Path | None:
  """`<data_dir>/<dataset>/<config>/<version>/dataset_info.json` of the version TFDS would load
  (the one named after ':' or the newest on disk), found without TensorFlow."""
  return clipset_lib.dataset_info_path(name, data_dir)


def _digest(path: pathlib.Path | None) -> str | None:
  return None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


# config.data settings in the key only when set (truthy), so that adding one leaves the files
# of views that do not use it where they were.
_KEY_WHEN_SET = ("selection", "regions", "magnify_alpha", "flow_range", "flow_method",
                 "flow_strain", "strain_range")


def cache_path(data) -> pathlib.Path:
  """The cache file of a `config.data` (datasets, label map and view settings) computed by this
  version of the view code (`views.VIEW_VERSION`: a new version names new files, so views
  cached by older code are rebuilt, not read)."""
  key = {"format": FORMAT, "view_version": views.VIEW_VERSION,
         "datasets": list(stand_ins.resolve(data)),
         "label_map": labels_lib.get_label_map(data.label_map).spec,
         "view": data.view, "num_frames": data.num_frames, "size": data.size,
         "grey": bool(data.grey)}
  for name in _KEY_WHEN_SET:
    if data.get(name, None):
      key[name] = data[name]
  digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
  return pathlib.Path(data.data_dir, "mejax_views", f"{digest}.npz")


def save(path: pathlib.Path, clips: ClipSet, view: np.ndarray, data) -> None:
  """Writes the view and metadata atomically (a half-written cache is never read)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  meta = {"format": FORMAT, "class_names": list(clips.class_names), "sources": list(clips.sources),
          "dropped": clips.dropped,
          "dataset_info": {n: _digest(dataset_info_path(n, data.data_dir)) for n in stand_ins.resolve(data)}}
  with files.atomic(path, "wb") as f:
    np.savez(f, view=view, meta=np.asarray(json.dumps(meta)),
             **{k: getattr(clips, k) for k in _ARRAYS})
  log.info("Cached the view of %s in %s", ",".join(stand_ins.resolve(data)), path)


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

  @property
  def loaded(self) -> bool:
    return self._clips is not None

  def __call__(self) -> ClipSet:
    if self._clips is None:
      data = self._data
      clips = clipset_lib.load(stand_ins.resolve(data), data.data_dir, data.label_map)
      selection = data.get("selection", "")
      if selection and data.get("stand_in", False):
        # A composite names the licensed clips; their stand-ins are used whole.
        log.warning("data.selection %r is not applied to stand-ins: every stand-in clip is used",
                    selection)
        selection = ""
      self._clips = composites.select(clips, selection)
    return self._clips


_REBUILD_ADVICE = ("write it where TensorFlow and the datasets are (`python -m mejax.prepare "
                   "--config CONFIG --data_dir DATA_DIR`) and copy that data dir's mejax_views/ "
                   "here")


def _check_same_clips(clips: ClipSet, other: ClipSet, variant) -> None:
  if not np.array_equal(clips.uid, other.uid):
    raise ValueError(
        f"The cached view {cache_path(variant)} (magnify_alpha {variant.magnify_alpha}) holds "
        "other clips than the evaluated view; delete it (or set data.view_cache=False) to rebuild "
        "both from the TFRecords")


def _load_or_build(data, write: bool, source: _ClipSource) -> tuple[ClipSet, np.ndarray]:
  use_cache = data.get("view_cache", True)
  path = cache_path(data)
  cached = None
  if use_cache:
    try:
      cached = _load(path, data)
    except _Unusable as e:
      _check_rebuildable(path, data, str(e))
      log.warning("The view cache %s is unusable (%s); rebuilding it from the TFRecords", path, e)
  if cached is not None:
    log.info("View read from the cache %s", path)
    return cached
  if not source.loaded and not _tensorflow_installed():
    # A GPU image without TensorFlow: say what is missing rather than fail on its import.
    why = ("data.view_cache is off" if not use_cache else
           f"the view cache {path} is stale" if path.exists() else f"there is no view cache {path}")
    raise ViewCacheError(
        f"Cannot read {', '.join(stand_ins.resolve(data))}: {why}, and reading the datasets needs "
        f"TensorFlow, which is not installed here; {_REBUILD_ADVICE}")
  clips = source()
  view = make_view(clips, data)
  if use_cache and write:
    try:
      save(path, clips, view, data)
    except OSError as e:  # a read-only data dir costs a rebuild next time, nothing else
      log.warning("Could not write the view cache %s: %s", path, e)
  return clips, view


def _tensorflow_installed() -> bool:
  return importlib.util.find_spec("tensorflow") is not None


def _check_rebuildable(path: pathlib.Path, data, problem: str) -> None:
  """Raises ViewCacheError when an unusable cache cannot be rebuilt here: its datasets are not
  built in the data dir (only mejax_views/ was copied) or TensorFlow is missing."""
  absent = [n for n in stand_ins.resolve(data) if dataset_info_path(n, data.data_dir) is None]
  if absent:
    missing = f"the datasets it was built from ({', '.join(absent)}) are not in {data.data_dir}"
  elif not _tensorflow_installed():
    missing = "TensorFlow, which reading the datasets needs, is not installed"
  else:
    return
  raise ViewCacheError(
      f"The view cache {path} is unusable ({problem}) and cannot be rebuilt here: {missing}. "
      f"Copy {path} again from the machine that wrote it, or {_REBUILD_ADVICE}")


class _Unusable(Exception):
  """A cache file that cannot be used as it is; the message says why."""


def load(path: pathlib.Path, data) -> tuple[ClipSet, np.ndarray] | None:
  """The cached (ClipSet, view), or None when there is no cache, a dataset changed since or the
  file is unusable (damaged, another cache format: warned).

  The ClipSet's `frames` are the view's clips (its original frames are not cached).
  """
  try:
    return _load(path, data)
  except _Unusable as e:
    log.warning("Ignoring the unusable view cache %s (%s)", path, e)
    return None


def _load(path: pathlib.Path, data) -> tuple[ClipSet, np.ndarray] | None:
  """`load`, raising _Unusable for a file that cannot be used."""
  if not path.exists():
    return None
  meta, arrays, view = _read(path, data)
  for name, digest in meta["dataset_info"].items():
    now = _digest(dataset_info_path(name, data.data_dir))
    if now is not None and now != digest:
      log.warning("%s was rebuilt since its view was cached in %s; rebuilding the view", name, path)
      return None
  clips = ClipSet(frames=list(view), class_names=tuple(meta["class_names"]),
                  sources=tuple(meta["sources"]), dropped=meta["dropped"], **arrays)
  return clips, view


def _read(path: pathlib.Path, data) -> tuple[dict, dict, np.ndarray]:
  """(meta, metadata arrays, view) of a cache file, read whole and checked."""
  try:
    # Every array is read here: np.load opens members lazily and zipfile checks a member's CRC
    # only once it was read to the end, so damage surfaces now or never.
    with np.load(path, allow_pickle=False) as z:
      missing = [k for k in ("meta", "view") + _ARRAYS if k not in z.files]
      if missing:
        raise _Unusable(f"damaged: arrays {missing} are missing")
      meta_text = z["meta"]
      arrays = {k: z[k] for k in _ARRAYS}
      view = z["view"]
  except _Unusable:
    raise
  except Exception as e:  # noqa: BLE001  zip, zlib, npy and OS errors alike mean a damaged file
    raise _Unusable(f"damaged: {type(e).__name__}: {_first_line(e)}") from e
  try:
    meta = json.loads(str(meta_text))
  except ValueError as e:
    raise _Unusable(f"damaged: its meta is not JSON ({_first_line(e)})") from e
  if not isinstance(meta, dict):
    raise _Unusable(f"damaged: its meta is a {type(meta).__name__}, not a JSON object")
  if meta.get("format") != FORMAT:
    raise _Unusable(f"written in cache format {meta.get('format')!r}, this mejax reads {FORMAT}")
  wrong = [k for k, kind in _META_TYPES.items() if not isinstance(meta.get(k), kind)]
  if wrong:
    raise _Unusable(f"damaged: its meta lacks {wrong} (or they have the wrong type)")
  _check_arrays(arrays, view, meta, data)
  return meta, arrays, view


def _check_arrays(arrays: dict, view: np.ndarray, meta: dict, data) -> None:
  """Raises _Unusable unless the arrays are the clips of one view of `data`."""
  expected = tuple(views.view_shape(data))
  if view.dtype != np.uint8 or view.shape[1:] != expected:
    raise _Unusable(f"damaged: its view is {view.dtype} {view.shape}, expected uint8 "
                    f"(N,) + {expected}")
  for name, values in arrays.items():
    if values.ndim != 1 or values.dtype.kind != _ARRAY_KINDS[name]:
      raise _Unusable(f"damaged: array {name!r} is {values.dtype} {values.shape}, expected one "
                      f"{_ARRAY_KINDS[name]!r}-kind value per clip")
    if len(values) != len(view):
      raise _Unusable(f"damaged: array {name!r} has {len(values)} values for the view's "
                      f"{len(view)} clips")
  labels = arrays["label"]
  if labels.size and (labels.min() < 0 or labels.max() >= len(meta["class_names"])):
    raise _Unusable(f"damaged: labels lie outside the {len(meta['class_names'])} classes")


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__
