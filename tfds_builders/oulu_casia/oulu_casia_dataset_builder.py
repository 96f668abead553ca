"""oulu_casia: Oulu-CASIA NIR&VIS, posed neutral -> peak sequences (manual download).

Configs, one camera x illumination each:
  vl_strong (default), vl_weak, vl_dark, ni_strong, ni_weak, ni_dark: the raw release
    `OriginalImg/<VL|NI>/<Strong|Weak|Dark>/P001/<Expression>/000.jpeg` (320x240; NI frames are
    grey near-infrared images, stored as RGB), face-cropped;
  vl_cropped, ni_cropped: the cropped release `PreProcess/<VL|NI>_Acropped/`, Strong
    illumination, read as it is. ASSUMPTION: its inner layout is taken to mirror OriginalImg's,
    `PreProcess/VL_Acropped/Strong/P001/Anger/000.jpeg` (DATASETS.md documents only
    `PreProcess/{VL_Acropped,NI_Acropped}/...`); the error on a mismatch lists what was looked
    for.
Each sequence is stored whole: onset = the first frame, apex = offset = the last (peak) frame.
Labels are the expression folder names, parsed by `mejax.annotations.oulu_casia`; 25 fps.

  tfds build tfds_builders/oulu_casia --config vl_strong --manual_dir /data/Oulu-CASIA
"""

from __future__ import annotations

import dataclasses
import pathlib

import tensorflow_datasets as tfds

from mejax.annotations import oulu_casia as oulu_labels
from mejax.annotations import records
from tfds_builders import clip_builder


@dataclasses.dataclass(eq=False)
class OuluCasiaConfig(clip_builder.ClipConfig):
  """camera: "VL" (visible) or "NI" (near-infrared); illumination: Strong, Weak or Dark."""
  camera: str = "VL"
  illumination: str = "Strong"


def _raw(camera: str, illumination: str) -> OuluCasiaConfig:
  return OuluCasiaConfig(
      name=f"{camera.lower()}_{illumination.lower()}", release="OriginalImg", cropped=False,
      camera=camera, illumination=illumination,
      description=f"OriginalImg/{camera}/{illumination}, face-cropped.")


def _cropped(camera: str) -> OuluCasiaConfig:
  return OuluCasiaConfig(
      name=f"{camera.lower()}_cropped", release="PreProcess", cropped=True, camera=camera,
      illumination="Strong",
      description=f"PreProcess/{camera}_Acropped/Strong (layout assumed to mirror "
                  "OriginalImg), read as it is.")


class Builder(clip_builder.ClipBuilder):
  """Oulu-CASIA NIR&VIS: 80 subjects x 6 posed expressions per camera and illumination."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  FPS = oulu_labels.FPS
  BUILDER_CONFIGS = ([_raw(c, i) for c in oulu_labels.CAMERAS for i in oulu_labels.ILLUMINATIONS]
                     + [_cropped(c) for c in oulu_labels.CAMERAS])
  DEFAULT_CONFIG_NAME = "vl_strong"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request Oulu-CASIA NIR&VIS from the University of Oulu (CMVS) and pass the folder holding
OriginalImg/ (and PreProcess/) as --manual_dir:
  OriginalImg/VL/Strong/P001/Anger/000.jpeg ...       configs vl_strong, vl_weak, vl_dark
  OriginalImg/NI/Strong/P001/Anger/000.jpeg ...       configs ni_strong, ni_weak, ni_dark
  PreProcess/VL_Acropped/Strong/P001/Anger/000.jpeg   config vl_cropped (ASSUMED layout: the
  PreProcess/NI_Acropped/Strong/P001/Anger/000.jpeg   config ni_cropped  documented path stops
                                                      at VL_Acropped/; OriginalImg's inner
                                                      layout is assumed)
Expression folders: Anger, Disgust, Fear, Happiness, Sadness, Surprise.
"""

  def _labels_folder(self, root: pathlib.Path) -> pathlib.Path:
    config = self.builder_config
    return oulu_labels.subjects_folder(root, config.camera, config.illumination, config.release)

  def check_manual_dir(self, root: pathlib.Path) -> None:
    try:
      self._labels_folder(root)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"{e}\nExpected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}") from None

  def parse_manual_dir(self, root: pathlib.Path) -> records.Parsed:
    config = self.builder_config
    return oulu_labels.parse(root, config.repair, camera=config.camera,
                             illumination=config.illumination, release=config.release)

  def frame_folder(self, root: pathlib.Path, sample: records.Sample) -> pathlib.Path:
    return root / sample.clip

  def frame_pattern(self, sample: records.Sample) -> str:
    return oulu_labels.FRAME_PATTERN
