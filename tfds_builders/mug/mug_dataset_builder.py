"""mug: MUG Facial Expression Database, `subjects3` release (manual download).

One config, `default`: `subjects3/001/anger/take000/img_0001.jpg` (896x896 JPEG, optionally a
`session<k>/` level under the subject), face-cropped; every take is stored whole (MUG
annotates no onset/apex/offset; sequences start and end neutral). Labels are the emotion folder
names, parsed by `mejax.annotations.mug`. fps 19 is UNVERIFIED.

  tfds build tfds_builders/mug --manual_dir /data/MUG
"""

from __future__ import annotations

import pathlib

import tensorflow_datasets as tfds

from mejax.annotations import mug as mug_labels
from mejax.annotations import records
from tfds_builders import clip_builder


class Builder(clip_builder.ClipBuilder):
  """MUG: posed basic expressions and neutral takes of 52 subjects (subjects3)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  FPS = mug_labels.FPS
  BUILDER_CONFIGS = [
      clip_builder.ClipConfig(name="default", release=mug_labels.RELEASE, cropped=False,
                              description="subjects3 takes (896x896), face-cropped, whole."),
  ]
  DEFAULT_CONFIG_NAME = "default"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request the MUG Facial Expression Database from its authors (Multimedia Understanding Group,
Aristotle University of Thessaloniki) and pass the folder holding subjects3/ (or subjects3/
itself) as --manual_dir:
  subjects3/001/anger/take000/img_0001.jpg ...
  subjects3/016/session1/happiness/take003/img_0150.jpg ...   (session level where present)
Emotion folders: anger, disgust, fear, happiness, neutral, sadness, surprise.
"""

  def check_manual_dir(self, root: pathlib.Path) -> None:
    try:
      mug_labels.release_root(root)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"{e}\nExpected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}") from None

  def parse_manual_dir(self, root: pathlib.Path) -> records.Parsed:
    return mug_labels.parse(root, self.builder_config.repair)

  def frame_folder(self, root: pathlib.Path, sample: records.Sample) -> pathlib.Path:
    return mug_labels.release_root(root) / sample.clip

  def frame_pattern(self, sample: records.Sample) -> str:
    return r"img_(?P<n>\d+)\.jpg"
