"""samm: SAMM, the spontaneous micro-facial movement dataset (Davison et al. 2016), 159 clips.

Config:
  raw (default): the distributed frames `SAMM/<subject>/<Filename>/<subject>_<frame:05d>.jpg`
    (grey, 960x650, not face crops: "SAMM_CROP" is only a user folder name, no cropped release
    is documented), face-detected, aligned and cropped once per clip, stored at 128x128 RGB.

Labels from `SAMM_Micro_FACS_Codes_v2.xlsx` (`mejax.annotations.samm`): fine emotion (8, incl.
`other`), MEGC 3-class label, AUs as coded, objective class, onset/apex/offset (200 fps). The two
rows with an apex typo (028_4_1, 032_3_1) are skipped and recorded (repair='midpoint' keeps them).

  tfds build tfds_builders/samm --manual_dir ~/data --data_dir DATA_DIR
"""

from __future__ import annotations

import pathlib
import re

import tensorflow_datasets as tfds

from mejax.annotations import records
from mejax.annotations import samm
from tfds_builders import clip_builder


class Builder(clip_builder.ClipBuilder):
  """SAMM micro-movements: 159 clips of 29 subjects at 200 fps, grey frames, face-cropped."""

  name = "samm"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      clip_builder.ClipConfig(
          name="raw", release="raw", cropped=False,
          description="SAMM/<subject>/<Filename>/<subject>_<frame>.jpg, face-cropped; "
                      "onset..offset at 128x128 RGB."),
  ]
  DEFAULT_CONFIG_NAME = "raw"
  FPS = samm.FPS
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Give as manual_dir the `SAMM` folder of the release, or the folder holding it:
    SAMM/SAMM_Micro_FACS_Codes_v2.xlsx          (any SAMM_Micro_FACS_Codes*.xlsx; may also lie
                                                 in manual_dir when SAMM/ is one level down)
    SAMM/006/006_1_2/006_05562.jpg ...          <subject>/<Filename>/<subject>_<frame>.jpg
  The SAMM folder may have another name (e.g. SAMM_CROP): the folder holding the 3-digit
  subject folders (006, 007, ...) is used.
  """

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self._release_roots: dict[pathlib.Path, pathlib.Path] = {}

  def _release_root(self, root: pathlib.Path) -> pathlib.Path:
    # Looked up once per manual_dir: frame_folder runs for every sample.
    if root not in self._release_roots:
      self._release_roots[root] = samm.release_root(root)
    return self._release_roots[root]

  def check_manual_dir(self, root: pathlib.Path) -> None:
    try:
      samm.find_annotation(root)
      self._release_root(root)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"{e}\nExpected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}") from None

  def parse_manual_dir(self, root: pathlib.Path) -> records.Parsed:
    return samm.parse(samm.find_annotation(root), repair=self.builder_config.repair)

  def frame_folder(self, root: pathlib.Path, sample: records.Sample) -> pathlib.Path:
    return self._release_root(root) / sample.clip

  def frame_pattern(self, sample: records.Sample) -> str:
    return re.escape(sample.subject) + r"_(?P<n>\d+)\.jpg"
