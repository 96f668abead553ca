"""casme2: CASME II, spontaneous micro-expressions at 200 fps (Yan et al., PLoS ONE 2014).

One record per row of the coding sheet (255 rows, 26 subjects), built from the release folder
of the config (DATASETS.md §2):

  cropped (default)  Cropped/subNN/<Filename>/reg_img<N>.jpg       onset..offset frames, already
                     cropped and registered by the authors: read as they are.
  raw_selected       CASME2_RAW_selected/subNN/<Filename>/img<N>.jpg  onset..offset frames of
                     the raw video: face detected, eye-aligned and cropped.
  raw                CASME2-RAW/subNN/<Filename>/img<N>.jpg         whole raw clips numbered
                     from 1: face cropped; stores onset..offset unless frame_range="whole".

Labels come from the newest `CASME2-coding-<date>.xlsx` in the manual dir (its Objective
Classes column, 2019 release) or, for the 2014 sheet, from `CASME2-ObjectiveClasses.xlsx`.
The row whose apex is `/` (sub04/EP12_01f) is skipped (or repaired with repair="midpoint");
skips and their reasons are in the dataset's metadata.json.

  tfds build tfds_builders/casme2 --config cropped --manual_dir /data/CASME2 --data_dir DATA_DIR
"""

from __future__ import annotations

import pathlib

import tensorflow_datasets as tfds

from mejax.annotations import casme2
from mejax.annotations import records
from tfds_builders import clip_builder

# Config release -> (release folder, frame file pattern with the frame number as group n).
RELEASES = {
    "cropped": ("Cropped", r"reg_img(?P<n>\d+)\.jpg"),
    "raw_selected": ("CASME2_RAW_selected", r"img(?P<n>\d+)\.jpg"),
    "raw": ("CASME2-RAW", r"img(?P<n>\d+)\.jpg"),
}


class Builder(clip_builder.ClipBuilder):
  """CASME II micro-expression clips (manual download)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: cropped, raw_selected and raw configs."}
  FPS = casme2.FPS
  BUILDER_CONFIGS = [
      clip_builder.ClipConfig(
          name="cropped", release="cropped", cropped=True,
          description="Cropped/: the authors' cropped and registered onset..offset frames."),
      clip_builder.ClipConfig(
          name="raw_selected", release="raw_selected", cropped=False,
          description="CASME2_RAW_selected/: raw onset..offset frames, face cropped here."),
      clip_builder.ClipConfig(
          name="raw", release="raw", cropped=False,
          description="CASME2-RAW/: whole raw clips, face cropped here; onset..offset stored "
                      "unless frame_range='whole'."),
  ]
  DEFAULT_CONFIG_NAME = "cropped"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Request CASME II from its authors (Institute of Psychology, Chinese Academy of Sciences; see
  the CASME II page at fu.psych.ac.cn) and point --manual_dir at the folder holding, at its top
  level or one folder level down:
    CASME2-coding-20140508.xlsx or CASME2-coding-20190701.xlsx  (coding sheet; the newest by
                                   the date in its name is used)
    CASME2-ObjectiveClasses.xlsx   (optional; read only when the coding sheet has no
                                   Objective Classes column, i.e. the 2014 sheet)
  and the release folder of the config:
    Cropped/sub01/EP02_01f/reg_img46.jpg ...              config cropped (default)
    CASME2_RAW_selected/sub01/EP02_01f/img46.jpg ...      config raw_selected
    CASME2-RAW/sub01/EP02_01f/img1.jpg ...                config raw
  """

  def _release(self) -> tuple[str, str]:
    release = self.builder_config.release
    if release not in RELEASES:
      raise ValueError(f"{self.name}/{self.builder_config.name}: release {release!r} not in "
                       f"{sorted(RELEASES)}")
    return RELEASES[release]

  def _release_dir(self, root: pathlib.Path) -> pathlib.Path:
    """The config's release folder at the top of `root` or one level down (case ignored)."""
    cache = self.__dict__.setdefault("_release_dirs", {})
    if root not in cache:
      cache[root] = self._find_release_dir(root)
    return cache[root]

  def _find_release_dir(self, root: pathlib.Path) -> pathlib.Path:
    name = self._release()[0].lower()
    candidates = [p for p in sorted(root.iterdir()) if p.is_dir()]
    for folder in candidates + [q for p in candidates for q in sorted(p.iterdir()) if q.is_dir()]:
      if folder.name.lower() == name:
        # Unzipping often nests a release folder in itself (CASME2-RAW/CASME2-RAW/sub01/...).
        nested = folder / folder.name
        if nested.is_dir() and not any(folder.glob("sub[0-9]*")):
          return nested
        return folder
    raise FileNotFoundError(
        f"{self.name}/{self.builder_config.name}: release folder {self._release()[0]!r} not "
        f"found in {root} (searched {root / self._release()[0]} and "
        f"{root / '*' / self._release()[0]}). Expected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")

  def check_manual_dir(self, root: pathlib.Path) -> None:
    self._release_dir(root)
    try:
      casme2.find_annotation(root)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"{e}. Expected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}") from None

  def parse_manual_dir(self, root: pathlib.Path) -> records.Parsed:
    coding, objective = casme2.find_annotation(root)
    # The 2019 sheet's own Objective Classes column wins over the separate file (parse's rule).
    return casme2.parse(coding, objective_classes=objective)

  def frame_folder(self, root: pathlib.Path, sample: records.Sample) -> pathlib.Path:
    return self._release_dir(root) / sample.clip

  def frame_pattern(self, sample: records.Sample) -> str:
    return self._release()[1]
