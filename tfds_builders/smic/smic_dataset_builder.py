"""smic: SMIC (Li et al. 2013), spontaneous micro-expressions filmed by HS, VIS and NIR cameras.

Configs (one camera each; `dataset` is "smic" in every one; sample ids `<subject>/<clip>` for HS,
`<CAM>/<subject>/<clip>` for VIS and NIR, so that cameras combine: mejax.annotations.smic):
  hs (default), vis, nir: the cropped release, `SMIC_all_cropped/<CAM>/sN/micro/<class>/<clip>/`,
    read as it is (faces already cropped). Whole clip folders: SMIC has no onset/apex/offset.
  hs_raw, vis_raw, nir_raw: the raw release, `SMIC_all_raw/<CAM>/...` (same tree), face-cropped.
  hs_e, vis_e, nir_e: SMIC-E long clips, `SMIC-E_raw image/<CAM>_long/SMIC-<CAM>-E/s01/s1_ne_01/
    image<frame:06d>.jpg`, labelled and timed by the workbook `<CAM>_long/SMIC-<CAM>-E_annotation
    *.xlsx` (onset..offset by default; a second ME of a clip is the sample `<clip>_2`),
    face-cropped. vis_e falls back to the VIS sheet of the HS workbook when VIS_long has none.
Labels: negative / positive / surprise (the MEGC 3 classes). HS 100 fps, VIS and NIR 25 fps.

  tfds build tfds_builders/smic --config hs --manual_dir ~/data/SMIC --data_dir DATA_DIR
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import tensorflow_datasets as tfds

from mejax.annotations import records
from mejax.annotations import sheets
from mejax.annotations import smic
from tfds_builders import clip_builder

log = logging.getLogger(__name__)

RELEASES = {"cropped": "SMIC_all_cropped", "raw": "SMIC_all_raw", "e": "SMIC-E_raw image"}
# Non-E frames are `image<n>.bmp`; one README names the cropped ones `reg_image<n>.bmp`
# (UNVERIFIED), and some copies were converted to .jpg: all are accepted.
_FRAME_PATTERN = r"(?:reg_)?image(?P<n>\d+)\.(?:bmp|jpg|jpeg|png)"


@dataclasses.dataclass(eq=False)
class SmicConfig(clip_builder.ClipConfig):
  camera: str = "HS"


def _config(camera: str, release: str) -> SmicConfig:
  suffix = {"cropped": "", "raw": "_raw", "e": "_e"}[release]
  fps = int(smic.FPS[camera])
  where = {"cropped": f"SMIC_all_cropped/{camera}/sN/micro/<class>/<clip>/, read as is",
           "raw": f"SMIC_all_raw/{camera}/sN/micro/<class>/<clip>/, face-cropped",
           "e": f"SMIC-E_raw image/{camera}_long/SMIC-{camera}-E/sNN/<clip>/ timed by "
                f"SMIC-{camera}-E_annotation*.xlsx, face-cropped"}[release]
  return SmicConfig(name=camera.lower() + suffix, release=release, cropped=release == "cropped",
                    camera=camera, description=f"SMIC-{camera} ({fps} fps): {where}; 128x128 RGB.")


class Builder(clip_builder.ClipBuilder):
  """SMIC micro-expressions (negative/positive/surprise) of the HS, VIS and NIR cameras."""

  name = "smic"
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release.",
      "1.1.0": "VIS and NIR sample ids start with the camera (VIS/s11/s11_ne_01), so that a "
               "composite of several cameras has unique ids; HS ids are unchanged.",
  }
  BUILDER_CONFIGS = [_config(camera, release) for release in ("cropped", "raw", "e")
                     for camera in smic.CAMERAS]
  DEFAULT_CONFIG_NAME = "hs"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Give as manual_dir the folder holding the SMIC release folders (or the release folder itself):
    SMIC_all_cropped/{HS,VIS,NIR}/s1/micro/{negative,positive,surprise}/s1_ne_01/image<n>.bmp
                                                   (configs hs, vis, nir; sN/non_micro/ unused)
    SMIC_all_raw/{HS,VIS,NIR}/...the same tree...  (configs hs_raw, vis_raw, nir_raw)
    SMIC-E_raw image/HS_long/SMIC-HS-E/s01/s1_ne_01/image<frame:06d>.jpg
    SMIC-E_raw image/HS_long/SMIC-HS-E_annotation.xlsx      (sheets HS and VIS)
    SMIC-E_raw image/VIS_long/SMIC-VIS-E/..., VIS_long/SMIC-VIS-E_annotation*.xlsx (optional)
    SMIC-E_raw image/NIR_long/SMIC-NIR-E/..., NIR_long/SMIC-NIR-E_annotation*.xlsx
                                                   (configs hs_e, vis_e, nir_e)
  Only the release folder of the chosen config is needed. It may also lie one folder down
  (manual_dir/SMIC/SMIC_all_cropped).
  """

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self._release_roots: dict[pathlib.Path, pathlib.Path] = {}

  # ---- where the files are --------------------------------------------------------------------
  def _release_root(self, root: pathlib.Path) -> pathlib.Path:
    """The config's release folder: manual_dir itself, manual_dir/<release>, or one further
    folder down."""
    if root in self._release_roots:
      return self._release_roots[root]
    folder_name = RELEASES[self.builder_config.release]
    candidates = [root] if root.name == folder_name else []
    candidates.append(root / folder_name)
    candidates += sorted(p / folder_name for p in root.iterdir() if p.is_dir())
    for candidate in candidates:
      if candidate.is_dir():
        self._release_roots[root] = candidate
        return candidate
    raise FileNotFoundError(
        f"{self.name}/{self.builder_config.name}: no {folder_name!r} folder in {root} or one "
        f"folder below it. Expected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")

  def _e_folder(self, root: pathlib.Path, camera: str | None = None) -> pathlib.Path:
    """`SMIC-E_raw image/<CAM>_long`."""
    return self._release_root(root) / f"{camera or self.builder_config.camera}_long"

  def _e_annotation(self, root: pathlib.Path) -> tuple[pathlib.Path, str]:
    """(workbook, sheet) with the timing of the config's camera."""
    camera = self.builder_config.camera
    own = self._find_workbook(root, camera)
    if own is not None:
      return own, smic.e_sheet(own, camera)
    if camera == "VIS":
      # The HS workbook carries a VIS sheet too.
      hs = self._find_workbook(root, "HS")
      if hs is not None and "VIS" in sheets.sheet_names(hs):
        log.info("%s/%s: no SMIC-VIS-E_annotation*.xlsx; using the VIS sheet of %s", self.name,
                 self.builder_config.name, hs.name)
        return hs, "VIS"
    folder = self._e_folder(root)
    raise FileNotFoundError(
        f"{self.name}/{self.builder_config.name}: no SMIC-{camera}-E_annotation*.xlsx in "
        f"{folder}" + (" (nor a VIS sheet in HS_long/SMIC-HS-E_annotation*.xlsx)"
                       if camera == "VIS" else "") +
        f". Expected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")

  def _find_workbook(self, root: pathlib.Path, camera: str) -> pathlib.Path | None:
    folder = self._e_folder(root, camera)
    if not folder.is_dir():
      return None
    found = sorted(p for p in folder.glob(f"SMIC-{camera}-E_annotation*.xls*") if p.is_file())
    if not found:
      return None
    # The plain name first, then variants (`..._annotation_2019.xlsx`) by name.
    chosen = min(found, key=lambda p: (p.stem != f"SMIC-{camera}-E_annotation", p.name))
    if len(found) > 1:
      log.warning("%s/%s: several annotation workbooks %s; using %s", self.name,
                  self.builder_config.name, [p.name for p in found], chosen.name)
    return chosen

  # ---- ClipBuilder ----------------------------------------------------------------------------
  def check_manual_dir(self, root: pathlib.Path) -> None:
    release = self._release_root(root)
    config = self.builder_config
    if config.release == "e":
      clips = self._e_folder(root) / f"SMIC-{config.camera}-E"
      if not clips.is_dir():
        raise FileNotFoundError(f"{self.name}/{config.name}: clip folder {clips} not found. "
                                f"Expected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    elif not (release / config.camera).is_dir():
      raise FileNotFoundError(f"{self.name}/{config.name}: no {config.camera}/ folder in "
                              f"{release}. Expected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")

  def parse_manual_dir(self, root: pathlib.Path) -> records.Parsed:
    config = self.builder_config
    if config.release == "e":
      workbook, sheet = self._e_annotation(root)
      return smic.parse_e(workbook, repair=config.repair, sheet=sheet,
                          fps=smic.FPS[config.camera], camera=config.camera)
    return smic.parse(self._release_root(root), repair=config.repair, camera=config.camera)

  def frame_folder(self, root: pathlib.Path, sample: records.Sample) -> pathlib.Path:
    config = self.builder_config
    if config.release == "e":
      return self._e_folder(root) / f"SMIC-{config.camera}-E" / sample.clip
    return self._release_root(root) / sample.clip

  def frame_pattern(self, sample: records.Sample) -> str:
    return _FRAME_PATTERN
