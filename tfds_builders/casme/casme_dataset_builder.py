"""casme: CASME (v1), spontaneous micro-expressions at 60 fps (Yan et al., FG 2013).

One record per row of the two section sheets, built from the raw release (DATASETS.md §1):

  raw (default)  CASME/RAW/CASME_A/Section A/subNN/<Filename>/<frames>   subjects 1-7
                 CASME/RAW/CASME_B/Section B/subNN/<Filename>/<frames>   subjects >= 8
                 frames named img<N>.jpg or <Filename>-<N>.jpg (N plain or zero-padded);
                 face detected, eye-aligned and cropped; onset..offset stored unless
                 frame_range="whole".

Labels come from `Section A.xls` and `Section B.xls`, found anywhere up to five folder levels
below the manual dir; each section's clip folders are read next to its sheet. Rows without an
apex (or with one outside onset..offset) are skipped, or repaired with repair="midpoint"; skips
and their reasons are in the dataset's metadata.json.

There is no `cropped` config: the only cropped CASME layout on record (`reg_<Filename>-<N>.jpg`)
is a third-party re-organisation with an unknown folder name and a merged sheet, not a release.

  tfds build tfds_builders/casme --manual_dir /data/CASME --data_dir DATA_DIR
"""

from __future__ import annotations

import pathlib
import re

import tensorflow_datasets as tfds

from mejax.annotations import casme
from mejax.annotations import records
from tfds_builders import clip_builder


class Builder(clip_builder.ClipBuilder):
  """CASME (v1) micro-expression clips (manual download)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: raw config (Sections A and B, face cropped)."}
  FPS = casme.FPS
  BUILDER_CONFIGS = [
      clip_builder.ClipConfig(
          name="raw", release="raw", cropped=False,
          description="CASME_A and CASME_B raw clips, face cropped here; onset..offset stored "
                      "unless frame_range='whole'."),
  ]
  DEFAULT_CONFIG_NAME = "raw"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Request CASME from its authors (Institute of Psychology, Chinese Academy of Sciences) and
  point --manual_dir at the folder holding the release (CASME/, CASME/RAW/ or a folder above;
  the section sheets are searched up to five folder levels down):
    CASME/RAW/CASME_A/Section A/Section A.xls           coding of subjects 1-7 (Sheet1)
    CASME/RAW/CASME_A/Section A/sub01/EP01_5/img1.jpg ...  (or EP01_5-1.jpg ...)
    CASME/RAW/CASME_B/Section B/Section B.xls           coding of subjects 8-19
    CASME/RAW/CASME_B/Section B/sub08/EP02_1/...
  Each section's subNN folders must lie next to its sheet.
  """

  def _sections(self, root: pathlib.Path) -> dict[str, pathlib.Path]:
    """{sheet name without extension ("Section A"): the folder holding it and its subjects}."""
    cache = self.__dict__.setdefault("_section_dirs", {})
    if root not in cache:
      cache[root] = {sheet.stem: sheet.parent for sheet in casme.find_sections(root)}
    return cache[root]

  def check_manual_dir(self, root: pathlib.Path) -> None:
    try:
      self._sections(root)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"{e}. Expected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}") from None

  def parse_manual_dir(self, root: pathlib.Path) -> records.Parsed:
    return casme.parse(root)

  def frame_folder(self, root: pathlib.Path, sample: records.Sample) -> pathlib.Path:
    section, clip = sample.clip.split("/", 1)  # "Section A/sub01/EP01_5"
    return self._sections(root)[section] / clip

  def frame_pattern(self, sample: records.Sample) -> str:
    filename = sample.clip.rsplit("/", 1)[-1]
    return rf"(?:img|{re.escape(filename)}-)(?P<n>\d+)\.jpg"
