"""The shared machinery of the builders of licensed datasets (manual download).

A dataset's builder subclasses `ClipBuilder` and says only what differs between datasets:
  * `parse_manual_dir(root)` -> `records.Parsed`: find the annotation (or label folders) in the
    user's folder and parse it with `mejax.annotations`;
  * `frame_folder(root, sample)` and `frame_pattern()`: where a sample's frames lie and how its
    frame files are named (a regex with a group `n`, the frame number).
`ClipBuilder` then reads the frames of each sample (onset..offset or the whole clip), checks
them, crops faces where the release is not already cropped (`mejax.preprocess.faces`, once per
clip on a reference frame, applied to all frames), resizes to the stored size and writes one
record of `mejax.data.schema` per clip. Clips are built by `build_workers()` processes at once
(decode, face crop, resize, PNG encode), a few clips per worker in flight, and written in sample
order, so the records do not depend on the worker count.

Nothing is dropped silently: a sample that cannot be built (bad row, missing or unreadable
frames, no face) is logged and recorded, with its reason, in the dataset's metadata
(`<data_dir>/<name>/<config>/<version>/metadata.json`, key "skipped"); samples a repair policy
changed are listed under "repaired". Records and their order depend only on the input files,
so building twice gives byte-identical TFRecords.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import multiprocessing
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from mejax.annotations import records
from mejax.data import dataset_names
from mejax.data import schema
from mejax.preprocess import frames as frames_lib

log = logging.getLogger(__name__)

CROP_RULES = ("face", "strcn")
# Clips in flight per worker: enough to keep every worker busy, few enough that memory stays
# bounded by a handful of clips whatever the dataset's size.
_IN_FLIGHT_PER_WORKER = 2


def build_workers() -> int:
  """Processes that build clips: $MEJAX_BUILD_WORKERS, else this process's CPUs."""
  value = os.environ.get("MEJAX_BUILD_WORKERS", "")
  if value:
    if not value.isdigit() or int(value) < 1:
      raise BuildError(f"MEJAX_BUILD_WORKERS={value!r}: expected a whole number >= 1")
    return int(value)
  return len(os.sched_getaffinity(0))


# The builder and manual dir a forked worker builds from (set in the parent before the fork).
_WORKER_SOURCE = None


def _build_in_worker(sample):
  builder, root = _WORKER_SOURCE
  return builder.try_build(root, sample)


class BuildError(ValueError):
  """A dataset that cannot be built from what the user gave: an unknown config or option, or
  input from which no clip could be built. Command-line builds print it as one `error:` line."""


@dataclasses.dataclass(eq=False)
class ClipConfig(tfds.core.BuilderConfig):
  """Options common to every licensed-dataset builder.

  release: which distributed release folder to read (dataset-specific, e.g. "cropped", "raw").
  cropped: the release's frames are already face crops (read as they are) or not (detect,
    align and crop the face first, with `crop_rule`).
  size: stored frames are size x size RGB.
  frame_range: "onset_offset" stores the annotated expression only, "whole" the clip folder.
  crop_rule: "face" (eye-aligned square box) or "strcn" (STRCN's eye-based rule, MODELS.md §5).
  repair: "skip" rows whose apex is missing or outside onset..offset, or "midpoint" them.
  """
  release: str = ""
  cropped: bool = True
  size: int = 128
  frame_range: str = "onset_offset"
  crop_rule: str = "face"
  repair: str = "skip"


class ClipBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the licensed-dataset builders; not registered itself."""

  # A dataset-specific fps default; parsers may set per-sample fps instead.
  FPS: float = 0.0
  # Text pointing the user to the expected files; subclasses fill it in.
  MANUAL_DOWNLOAD_INSTRUCTIONS = ""

  def __init__(self, *, config=None, size: int | None = None, frame_range: str | None = None,
               crop_rule: str | None = None, repair: str | None = None, **kwargs):
    # Storage options derive a config from a shipped one (e.g. "casme2/cropped/size=64" ->
    # config "cropped_s64"), stored beside it; see mejax.data.dataset_names.
    options = {k: v for k, v in dict(size=size, frame_range=frame_range, crop_rule=crop_rule,
                                     repair=repair).items() if v is not None}
    if options:
      base = config or self.DEFAULT_CONFIG_NAME or self.BUILDER_CONFIGS[0].name
      if isinstance(base, str):
        known = {c.name: c for c in self.BUILDER_CONFIGS}
        if base not in known:
          raise BuildError(f"{self.name}: unknown config {base!r}; configs are {sorted(known)}")
        base = known[base]
      if "size" in options:
        options["size"] = int(options["size"])
      config = dataclasses.replace(
          base, name=dataset_names.derived_config_name(base.name, options),
          description=f"{base.description} Stored with {options}.", **options)
    super().__init__(config=config, **kwargs)

  # ---- what subclasses provide ----------------------------------------------------------------
  def parse_manual_dir(self, root: pathlib.Path) -> records.Parsed:
    raise NotImplementedError

  def frame_folder(self, root: pathlib.Path, sample: records.Sample) -> pathlib.Path:
    raise NotImplementedError

  def frame_pattern(self, sample: records.Sample) -> str:
    raise NotImplementedError

  def check_manual_dir(self, root: pathlib.Path) -> None:
    """Raises with what is expected when `root` is not the dataset's folder (override to check
    more than existence)."""

  # ---- shared ---------------------------------------------------------------------------------
  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return self.dataset_info_from_configs(
        features=schema.clip_features(config.size, config.size, 3),
        metadata=tfds.core.MetadataDict(),
        description=type(self).__doc__,
    )

  def _split_generators(self, dl_manager):
    config = self.builder_config
    if config.frame_range not in frames_lib.FRAME_RANGES:
      raise BuildError(f"{self.name}/{config.name}: frame_range {config.frame_range!r} not in "
                       f"{frames_lib.FRAME_RANGES}")
    if config.crop_rule not in CROP_RULES:
      raise BuildError(f"{self.name}/{config.name}: crop_rule {config.crop_rule!r} not in "
                       f"{CROP_RULES}")
    root = pathlib.Path(dl_manager.manual_dir)
    if not root.is_dir():
      raise FileNotFoundError(
          f"{self.name}: manual_dir {root} does not exist. Expected:\n"
          f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    self.check_manual_dir(root)
    parsed = self.parse_manual_dir(root)
    checked = records.validate(parsed.samples, config.repair)
    skipped = list(parsed.skipped) + checked.skipped
    samples = sorted(checked.samples, key=lambda s: s.sample_id)
    return {"train": self._generate_examples(root, samples, skipped)}

  def _generate_examples(self, root: pathlib.Path, samples: list[records.Sample],
                         skipped: list[records.Skip]):
    config = self.builder_config
    annotated = len(samples) + len(skipped)
    built = 0
    for sample, example in self._built_in_order(root, samples):
      if isinstance(example, frames_lib.ClipError):
        # Paths relative to the manual dir: the metadata does not depend on where it lies.
        reason = str(example).replace(f"{root}/", "")
        skipped.append(records.Skip(self.name, sample.sample_id, sample.source, reason))
        continue
      built += 1
      yield sample.sample_id, example
    for skip in skipped:
      log.warning("%s/%s: skipped %s (%s): %s", self.name, config.name, skip.sample_id,
                  skip.file, skip.reason)
    repaired = [{"sample_id": s.sample_id, "annotation": s.source, "repair": s.repaired}
                for s in samples if s.repaired]
    self.info.metadata["skipped"] = [skip.as_dict() for skip in skipped]
    self.info.metadata["repaired"] = repaired
    self.info.metadata["counts"] = {"annotated": annotated, "built": built,
                                    "skipped": len(skipped)}
    log.info("%s/%s: %d clips built, %d skipped (reasons in metadata.json)", self.name,
             config.name, built, len(skipped))
    if built == 0:
      reasons = "; ".join(f"{s.sample_id}: {s.reason}" for s in skipped[:5])
      raise BuildError(f"{self.name}/{config.name}: no clip could be built from "
                       f"{root} ({len(skipped)} skipped; e.g. {reasons})")

  def try_build(self, root: pathlib.Path, sample: records.Sample):
    """build_example's record, or the ClipError saying why the sample cannot be built."""
    try:
      return self.build_example(root, sample)
    except frames_lib.ClipError as e:
      return e

  def _built_in_order(self, root: pathlib.Path, samples: list[records.Sample]):
    """(sample, record or ClipError) for every sample, in order, built by build_workers()
    forked processes (the parent only writes). Any other error stops the build."""
    workers = min(build_workers(), len(samples))
    if workers <= 1:
      for sample in samples:
        yield sample, self.try_build(root, sample)
      return
    global _WORKER_SOURCE
    _WORKER_SOURCE = (self, root)
    try:
      # fork: the workers inherit the builder; they run OpenCV and numpy only, never TensorFlow.
      with multiprocessing.get_context("fork").Pool(workers) as pool:
        queue = iter(samples)
        pending = collections.deque(
            (sample, pool.apply_async(_build_in_worker, (sample,)))
            for sample in itertools.islice(queue, workers * _IN_FLIGHT_PER_WORKER))
        while pending:
          sample, result = pending.popleft()
          following = next(queue, None)
          if following is not None:
            pending.append((following, pool.apply_async(_build_in_worker, (following,))))
          yield sample, result.get()
    finally:
      _WORKER_SOURCE = None

  def build_example(self, root: pathlib.Path, sample: records.Sample) -> dict:
    """One schema record of a sample; raises frames_lib.ClipError when it cannot be built."""
    config = self.builder_config
    folder = self.frame_folder(root, sample)
    available = frames_lib.numbered_frames(folder, self.frame_pattern(sample))
    numbers, (onset, apex, offset) = frames_lib.select_range(
        available, sample.onset, sample.apex, sample.offset, config.frame_range, folder)
    video = frames_lib.read_frames(available, numbers)
    if not config.cropped:
      from mejax.preprocess import faces  # OpenCV cascades: only raw releases need them
      reference = onset  # the face is located on the first expression frame
      try:
        video = faces.crop_clip(video, size=config.size, rule=config.crop_rule,
                                reference=reference)
      except faces.FaceNotFound as e:
        raise frames_lib.ClipError(f"{available[numbers[reference]]}: {e}") from None
    video = frames_lib.resize_frames(video, config.size)
    first = numbers[0]
    return {
        schema.SAMPLE_ID: sample.sample_id,
        schema.DATASET: self.name,
        schema.SUBJECT: sample.subject,
        schema.EMOTION: sample.emotion,
        schema.THREE_CLASS: sample.three_class,
        schema.ACTION_UNITS: sample.action_units,
        schema.OBJECTIVE_CLASS: sample.objective_class,
        schema.FPS: float(sample.fps or self.FPS),
        schema.ONSET: onset,
        schema.APEX: apex,
        schema.OFFSET: offset,
        schema.SOURCE_FRAMES: np.asarray(numbers, dtype=np.int32),
        schema.ONSET_FRAME: sample.onset if sample.onset >= 0 else first,
        schema.APEX_FRAME: sample.apex,
        schema.OFFSET_FRAME: sample.offset if sample.offset >= 0 else numbers[-1],
        schema.ANNOTATION: sample.source,
        schema.FRAMES: frames_lib.encode_png(video),
    }

