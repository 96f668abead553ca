"""TFRecord -> ClipSet: every clip of one or more built datasets in host memory.

MER datasets are tiny (MEGC2019 has 442 clips), so a ClipSet keeps all frames as uint8 numpy
arrays with their metadata. Several datasets concatenate into one composite with one label map;
subjects stay keyed by (dataset, subject).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np

from mejax.data import labels as labels_lib
from mejax.data import schema

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ClipSet:
  """Clips (variable length, uint8 (T, H, W, C)) and per-clip metadata arrays of length N."""
  frames: list[np.ndarray]
  sample_id: np.ndarray
  dataset: np.ndarray
  subject: np.ndarray
  emotion: np.ndarray
  action_units: np.ndarray
  objective_class: np.ndarray
  fps: np.ndarray
  onset: np.ndarray
  apex: np.ndarray
  offset: np.ndarray
  label: np.ndarray
  class_names: tuple[str, ...]
  # Where the clips came from: "name:version" per builder (keys view caches and checkpoints).
  sources: tuple[str, ...] = ()
  # Samples the label map left out: dicts with sample_id, dataset, emotion, reason.
  dropped: list[dict] = dataclasses.field(default_factory=list)

  def __len__(self) -> int:
    return len(self.frames)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def uid(self) -> np.ndarray:
    """Composite-wide unique id "dataset/sample_id"."""
    return np.asarray([f"{d}/{s}" for d, s in zip(self.dataset, self.sample_id)])

  @property
  def subject_key(self) -> np.ndarray:
    """Subjects keyed by dataset too: `s01` of SMIC and `sub01` of CASME II never merge."""
    return np.asarray([f"{d}/{s}" for d, s in zip(self.dataset, self.subject)])

  def subset(self, index) -> "ClipSet":
    index = np.asarray(index)
    if index.dtype == bool:
      index = np.flatnonzero(index)
    arrays = {f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)
              if isinstance(getattr(self, f.name), np.ndarray)}
    return dataclasses.replace(self, frames=[self.frames[i] for i in index], **arrays)


def concatenate(clipsets: Sequence[ClipSet]) -> ClipSet:
  """One composite ClipSet; all parts must share one label map's classes."""
  if not clipsets:
    raise ValueError("concatenate() needs at least one ClipSet")
  class_names = clipsets[0].class_names
  for cs in clipsets[1:]:
    if cs.class_names != class_names:
      raise ValueError(f"Cannot concatenate ClipSets with classes {class_names} and {cs.class_names}")
  first = clipsets[0]
  arrays = {f.name: np.concatenate([getattr(cs, f.name) for cs in clipsets])
            for f in dataclasses.fields(first) if isinstance(getattr(first, f.name), np.ndarray)}
  merged = ClipSet(frames=[fr for cs in clipsets for fr in cs.frames], class_names=class_names,
                   sources=tuple(s for cs in clipsets for s in cs.sources),
                   dropped=[d for cs in clipsets for d in cs.dropped], **arrays)
  uid = merged.uid
  if len(set(uid)) != len(uid):
    dup = sorted({u for u in uid if (uid == u).sum() > 1})[:5]
    raise ValueError(f"Duplicate sample ids in the composite: {dup}")
  return merged


def from_records(records: Sequence[dict], label_map: labels_lib.LabelMap,
                 sources: tuple[str, ...] = ()) -> ClipSet:
  """Builds a ClipSet from decoded records (dicts with the keys of `mejax.data.schema`)."""
  kept, dropped = [], []
  for rec in records:
    emotion = _text(rec[schema.EMOTION])
    dataset = _text(rec[schema.DATASET])
    cls = label_map.assign(emotion, int(rec[schema.OBJECTIVE_CLASS]), dataset)
    if cls is None:
      dropped.append({"sample_id": _text(rec[schema.SAMPLE_ID]), "dataset": dataset,
                      "emotion": emotion,
                      "reason": f"emotion {emotion!r} not in label map {label_map.name!r}"})
      continue
    kept.append((rec, cls))
  if dropped:
    log.warning("Label map %r dropped %d of %d clips (e.g. %s)", label_map.name, len(dropped),
                len(records), dropped[0]["reason"])

  def column(key, dtype):
    return np.asarray([_text(r[key]) if dtype is str else r[key] for r, _ in kept], dtype=dtype)

  return ClipSet(
      frames=[np.asarray(r[schema.FRAMES], dtype=np.uint8) for r, _ in kept],
      sample_id=column(schema.SAMPLE_ID, str), dataset=column(schema.DATASET, str),
      subject=column(schema.SUBJECT, str), emotion=column(schema.EMOTION, str),
      action_units=column(schema.ACTION_UNITS, str),
      objective_class=column(schema.OBJECTIVE_CLASS, np.int32),
      fps=column(schema.FPS, np.float32), onset=column(schema.ONSET, np.int32),
      apex=column(schema.APEX, np.int32), offset=column(schema.OFFSET, np.int32),
      label=np.asarray([c for _, c in kept], dtype=np.int32),
      class_names=label_map.class_names, sources=sources, dropped=dropped)


def load(datasets: Sequence[str], data_dir: str, label_map: str) -> ClipSet:
  """Loads built TFDS datasets ("name/config", e.g. "synthetic_me/micro") into one ClipSet."""
  tfds = import_tfds()
  lmap = labels_lib.get_label_map(label_map)
  parts = []
  for name in datasets:
    try:
      builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
      raise ValueError(f"Unknown dataset {name!r}: {e}") from None
    if not builder.is_prepared():
      raise FileNotFoundError(
          f"Dataset {name!r} was never built in {data_dir!r} (no {builder.data_dir}). Build it "
          f"first: `python -m mejax.prepare {name} --data_dir {data_dir}`.")
    records = []
    for split in builder.info.splits:
      records.extend(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
    version = f"{builder.info.full_name}"
    parts.append(from_records(records, lmap, sources=(version,)))
    parts[-1].dropped[:0] = builder_skips(builder)
    log.info("Loaded %s: %d clips (%d dropped by label map)", version, len(parts[-1]),
             len(parts[-1].dropped))
  return concatenate(parts)


def builder_skips(builder) -> list[dict]:
  """The samples a builder could not build (its metadata's "skipped"), as `ClipSet.dropped` rows."""
  metadata = builder.info.metadata or {}
  return [{"sample_id": skip["sample_id"], "dataset": skip["dataset"], "emotion": "",
           "reason": f"not built ({skip['file']}): {skip['reason']}"}
          for skip in metadata.get("skipped", [])]


def import_tfds():
  """tensorflow_datasets with the project's builders registered, TensorFlow kept off the GPUs.

  TensorFlow only reads records here; left alone, a GPU build of it would reserve most of every
  GPU's memory before JAX could use it.
  """
  import tensorflow as tf
  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:  # TensorFlow already initialised its devices (then it was done before)
    pass
  import tensorflow_datasets as tfds
  import tfds_builders  # noqa: F401  registers the project's builders
  return tfds


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)
