"""TFRecord -> ClipSet: every clip of one or more built datasets in host memory.

MER datasets are tiny (MEGC2019 has 442 clips), so a ClipSet keeps all frames as uint8 numpy
arrays with their metadata. Several datasets concatenate into one composite with one label map;
subjects stay keyed by (dataset, subject).

A built dataset whose files cannot be read (a shard cut short, garbled or missing, a damaged
dataset_info.json, frames that do not decode) raises DatasetDamaged: one line naming the dataset,
the files and the commands that rebuild it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import pathlib
import re
import shlex
import sys
import tempfile
from typing import Mapping, Sequence

import numpy as np

from mejax.data import dataset_names
from mejax.data import labels as labels_lib
from mejax.data import schema

log = logging.getLogger(__name__)


class DatasetDamaged(ValueError):
  """A built dataset whose files cannot be read; the message names them and how to rebuild it."""


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
      raise ValueError(
          f"Cannot concatenate ClipSets with classes {class_names} and {cs.class_names}")
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
    cls = label_map.assign(emotion, int(rec[schema.OBJECTIVE_CLASS]), dataset,
                           _text(rec[schema.SAMPLE_ID]))
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


def load(datasets: Sequence[str], data_dir: str, label_map: str | Mapping) -> ClipSet:
  """Loads built TFDS datasets ("name/config", e.g. "synthetic_me/micro") into one ClipSet."""
  tfds = import_tfds()
  lmap = labels_lib.get_label_map(label_map)
  parts = []
  for name in datasets:
    builder = _builder(tfds, name, data_dir)
    records = _read_records(tfds, builder, name, data_dir)
    version = f"{builder.info.full_name}"
    parts.append(from_records(records, lmap, sources=(version,)))
    parts[-1].dropped[:0] = builder_skips(builder)
    log.info("Loaded %s: %d clips (%d dropped by label map)", version, len(parts[-1]),
             len(parts[-1].dropped))
  return concatenate(parts)


def construct_builder(tfds, name: str, data_dir: str):
  """tfds.builder(name); ValueError naming mejax's datasets or the dataset's configs when the
  name is unknown, DatasetDamaged when a built copy's files do not load."""
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise ValueError(unknown_dataset(name)) from None
  except Exception as e:  # noqa: BLE001  TFDS raises JSON, protobuf and OS errors alike
    info = dataset_info_path(name, data_dir)
    if info is None:  # nothing built to blame: a name TFDS cannot construct
      raise ValueError(_unloadable(tfds, name, e)) from None
    raise dataset_damaged(name, data_dir, info.parent,
                          f"its files do not load ({type(e).__name__}: {_tfds_reason(e)})") from e


def _unloadable(tfds, name: str, error: Exception) -> str:
  base = dataset_names.parse(name)[0]
  try:
    configs = [c.name for c in tfds.builder_cls(base).BUILDER_CONFIGS]
  except Exception:  # noqa: BLE001  the message only loses the list of configs
    configs = []
  reason = re.sub(r"\s*Here are .*$", "", _tfds_reason(error))
  known = f"; {base}'s configs are {', '.join(configs)}" if configs else ""
  return f"Dataset {name!r} cannot be loaded ({reason}){known}"


# The dataset that ships inside mejax: built on first use, where a licensed one is refused.
EMBEDDED = "synthetic_me"


def is_embedded(name: str) -> bool:
  return dataset_names.parse(name)[0] == EMBEDDED


def build_embedded(tfds, name: str, data_dir: str):
  """Builds an embedded dataset (synthetic_me/...) unless it is built; returns its builder.

  Two runs starting at once build it once: the build holds an flock in the data dir, and the
  second finds it built when the first lets go."""
  import fcntl
  try:
    os.makedirs(data_dir, exist_ok=True)
    lock = open(os.path.join(data_dir, f".mejax-build-{name.replace('/', '_')}.lock"), "w")
  except OSError as e:
    raise ValueError(f"Dataset {name!r} is not built in {data_dir!r}, which cannot be written "
                     f"({e.strerror}): give a data dir you can write (--config.data.data_dir or "
                     f"`python -m mejax.prepare {name} --data_dir DIR`)") from None
  with lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      builder = construct_builder(tfds, name, data_dir)
      if not builder.is_prepared():
        log.warning("Dataset %r is not built in %s: building it now (it ships with mejax; about "
                    "30 s for synthetic_me/micro, once)", name, data_dir)
        with contextlib.redirect_stdout(io.StringIO()):  # TFDS's "Downloading ... Unknown size"
          builder.download_and_prepare()
        log.warning("Built %s: %d clips in %s", builder.info.full_name,
                    builder.info.splits.total_num_examples, builder.data_dir)
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
  return construct_builder(tfds, name, data_dir)


def _builder(tfds, name: str, data_dir: str):
  """The TFDS builder of a built dataset (an embedded one is built first); DatasetDamaged when its
  files do not load."""
  builder = construct_builder(tfds, name, data_dir)
  if not builder.is_prepared():
    if os.path.isdir(builder.data_dir):  # TFDS renames a finished build into place: cut short
      raise dataset_damaged(
          name, data_dir, builder.data_dir,
          f"{builder.data_dir} has no dataset_info.json (an unfinished build or copy)")
    if is_embedded(name):
      return build_embedded(tfds, name, data_dir)
    raise FileNotFoundError(
        f"Dataset {name!r} was never built in {data_dir!r} (no {builder.data_dir}). Build it "
        f"first: `python -m mejax.prepare {name} --data_dir {data_dir}`.")
  return builder


def _read_records(tfds, builder, name: str, data_dir: str) -> list[dict]:
  """Every record of every split, decoded; DatasetDamaged when TensorFlow cannot read them."""
  import tensorflow as tf
  records = []
  try:
    with _without_tensorflow_noise():
      for split in builder.info.splits:
        records.extend(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
  except tf.errors.OpError as e:
    shards = _damaged_shards(tf, builder)
    if shards:
      more = f"; and {len(shards) - 3} more shards" if len(shards) > 3 else ""
      problem = "; ".join(shards[:3]) + more
    elif isinstance(e, tf.errors.InvalidArgumentError):
      problem = f"a record of {builder.data_dir} does not decode ({_tf_message(e)})"
    else:
      problem = f"reading {builder.data_dir} failed ({_tf_message(e)})"
    raise dataset_damaged(name, data_dir, builder.data_dir, problem) from e
  return records


def unknown_dataset(name: str) -> str:
  """The one-line error for a dataset name no builder has (mejax's builders are listed)."""
  import tfds_builders
  ours = sorted(p.name for p in pathlib.Path(tfds_builders.__file__).parent.iterdir()
                if (p / "__init__.py").exists())
  return (f"Unknown dataset {name!r}: mejax's datasets are {', '.join(ours)} "
          "(name[/config][:version], e.g. 'synthetic_me/micro' or 'casme2/cropped')")


def _damaged_shards(tf, builder) -> list[str]:
  """What is wrong with each shard file that is missing, fails its record checksums or holds
  another number of records than the dataset's info says (TensorFlow's errors name none)."""
  problems = []
  for split in builder.info.splits.values():
    for path, expected in zip(split.filepaths, split.shard_lengths):
      if not os.path.exists(path):
        problems.append(f"shard {path} is missing")
        continue
      try:
        count = sum(1 for _ in tf.data.TFRecordDataset(str(path)))
      except tf.errors.OpError as e:
        problems.append(f"shard {path} is damaged ({_tf_message(e)})")
        continue
      if count != expected:
        problems.append(f"shard {path} holds {count} of its {expected} records")
  return problems


def dataset_damaged(name: str, data_dir: str, version_dir, problem: str) -> DatasetDamaged:
  """DatasetDamaged of dataset `name` with the commands that rebuild it: building an already
  built dataset does nothing, so its version folder goes first."""
  command = f"python -m mejax.prepare {shlex.quote(name)} --data_dir {shlex.quote(str(data_dir))}"
  try:
    import tensorflow_datasets as tfds
    manual = getattr(tfds.builder_cls(dataset_names.parse(name)[0]),
                     "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
  except Exception:  # noqa: BLE001  the advice only loses its --manual_dir hint
    manual = None
  if manual:
    command += " --manual_dir DATASET_FOLDER"
  return DatasetDamaged(
      f"Dataset {name!r} in {str(data_dir)!r} is damaged: {problem}. Rebuild it: delete "
      f"{version_dir} (`rm -r {shlex.quote(str(version_dir))}`), then run `{command}`")


def _tf_message(error) -> str:
  """TensorFlow's error in one short line: its first line without the op and function names."""
  text = (getattr(error, "message", None) or str(error)).strip()
  text = text.splitlines()[0] if text else ""
  text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)           # {{function_node ...}}
  text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)          # [Op:IteratorGetNext] name:
  text = re.sub(r"^.*Iterator::\S+: ", "", text)          # the tf.data pipeline's path
  return f"{type(error).__name__}: {text.strip()[:300].rstrip('.')}"


def _tfds_reason(error: BaseException) -> str:
  """The first line of an error TFDS re-raised, without the builder arguments it put in front."""
  text = str(error).strip()
  text = text.splitlines()[0] if text else type(error).__name__
  text = re.sub(r'^Failed to construct dataset .*?builder_kwargs ".*?": ', "", text)
  return text[:300].rstrip(".")


def _version_key(name: str) -> tuple[int, ...]:
  return tuple(int(p) for p in name.split("."))


def dataset_info_path(name: str, data_dir: str) -> pathlib.Path | None:
  """`<data_dir>/<dataset>/<config>/<version>/dataset_info.json` of the version TFDS would load
  (the one named after ':' or the newest on disk), found without TensorFlow."""
  _, _, version, _ = dataset_names.parse(name)
  root = pathlib.Path(data_dir, *dataset_names.storage_path(name).split("/"))
  if version:
    path = root / version / "dataset_info.json"
    return path if path.exists() else None
  # Version folders only (TFDS builds into an "incomplete..." sibling, then renames it).
  versions = sorted((p for p in root.glob("*/dataset_info.json")
                     if re.fullmatch(r"\d+(\.\d+)*", p.parent.name)),
                    key=lambda p: _version_key(p.parent.name))
  return versions[-1] if versions else None


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
  with _without_tensorflow_noise():
    import tensorflow as tf
  logging.getLogger("absl").addFilter(_drop_tfds_notes)
  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:  # TensorFlow already initialised its devices (then it was done before)
    pass
  import tensorflow_datasets as tfds
  import tfds_builders  # noqa: F401  registers the project's builders
  return tfds


# What TensorFlow's C++ side prints when it loads and when it reads records, none of it a user's
# concern: absl's pre-initialisation notice, oneDNN and CPU-feature notes, reader buffer sizes.
_TENSORFLOW_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|\] oneDNN custom operations|cpu_feature_guard|"
    r"^To enable the following instructions|tf_record_dataset_op\.cc:\d+\] The default buffer")
# TFDS's Python notes about its own API (our builders' features) and about unbuilt folders, which
# the "never built" error says better.
_TFDS_NOTES = re.compile(r"`FeatureConnector\.dtype` is deprecated|^Variant folder .* has no ")


def _drop_tfds_notes(record: logging.LogRecord) -> bool:
  return not _TFDS_NOTES.search(record.getMessage())


@contextlib.contextmanager
def _without_tensorflow_noise():
  """Sends the process's native stderr (fd 2) to a temporary file for the block, then writes
  back what it caught, less TensorFlow's notices (C++ logging ignores TF_CPP_MIN_LOG_LEVEL
  before absl is initialised). An error raised in the block is printed after what it caught."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as caught:
    os.dup2(caught.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      caught.seek(0)
      for line in caught.read().decode(errors="replace").splitlines(keepends=True):
        if not _TENSORFLOW_NOISE.search(line):
          sys.stderr.write(line)
      sys.stderr.flush()


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)
