"""ckplus: CK+ (Extended Cohn-Kanade), posed neutral -> peak sequences (manual download).

One config, `default`: the raw frames `cohn-kanade-images/S005/001/S005_001_00000001.png`
(640x490, grey or colour), face-cropped; the whole sequence is stored (onset = first frame,
apex = offset = the peak, last frame). Only the 327 sequences with an `Emotion/` file are
samples; AUs come from `FACS/` when present. Labels are parsed by `mejax.annotations.ckplus`.
fps 30 is UNVERIFIED.

  tfds build tfds_builders/ckplus --manual_dir /data/CK+
"""

from __future__ import annotations

import pathlib
import re

import tensorflow_datasets as tfds

from mejax.annotations import ckplus as ckplus_labels
from mejax.annotations import records
from tfds_builders import clip_builder


class Builder(clip_builder.ClipBuilder):
  """CK+: 593 posed sequences of 123 subjects, 327 with an emotion label (neutral -> peak)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  FPS = ckplus_labels.FPS
  BUILDER_CONFIGS = [
      clip_builder.ClipConfig(name="default", release=ckplus_labels.IMAGES, cropped=False,
                              description="Raw frames (640x490), face-cropped; whole "
                                          "neutral -> peak sequences."),
  ]
  DEFAULT_CONFIG_NAME = "default"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request CK+ from its authors (the Cohn-Kanade / Affect Analysis Group site), unzip
cohn-kanade-images.zip, Emotion_labels.zip and (optionally) FACS_labels.zip into one folder and
pass it as --manual_dir. It must hold:
  cohn-kanade-images/S005/001/S005_001_00000001.png ...
  Emotion/S005/001/S005_001_00000011_emotion.txt
  FACS/S005/001/S005_001_00000011_facs.txt          (optional: action units)
Landmarks/ is not read.
"""

  def check_manual_dir(self, root: pathlib.Path) -> None:
    missing = [name for name in (ckplus_labels.IMAGES, ckplus_labels.EMOTION)
               if not (root / name).is_dir()]
    if missing:
      found = sorted(p.name for p in root.iterdir())
      raise FileNotFoundError(
          f"{self.name}: {root} has no {', '.join(m + '/' for m in missing)} (found: {found}). "
          f"Expected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")

  def parse_manual_dir(self, root: pathlib.Path) -> records.Parsed:
    return ckplus_labels.parse(root, self.builder_config.repair)

  def frame_folder(self, root: pathlib.Path, sample: records.Sample) -> pathlib.Path:
    return root / ckplus_labels.IMAGES / sample.clip

  def frame_pattern(self, sample: records.Sample) -> str:
    subject, sequence = sample.clip.split("/")
    return re.escape(f"{subject}_{sequence}_") + r"(?P<n>\d+)\.png"
