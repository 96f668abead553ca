"""casme_sq: CAS(ME)^2 part B, the cut macro- and micro-expression samples (manual download).

Configs (DATASETS.md §3):
  micro (default): the 57 micro-expressions from the cropped release,
    `cropped/<NN>/<expression id>/img<N>.jpg` (subject folder WITHOUT the 's': `cropped/15/`),
    read as they are;
  macro: the 300 macro-expressions of the same release (44 have no annotated offset and are
    kept out, with their reason, in the metadata);
  micro_raw, macro_raw: the same rows from `selectedpic/s<NN>/<expression id>/img<N>.jpg`
    (full frames), face-cropped.
Frame numbers are those of the long video (`anger1_1` starts at img557), read as they are;
the stray double extension `img2977.jpg.jpg` reported in one folder is accepted. Labels come
from the coding workbook `CAS(ME)^2code_final*.xlsx` (or a CSV export of its first sheet) in
the manual dir, parsed by `mejax.annotations.casme_sq`.

  tfds build tfds_builders/casme_sq --config micro --manual_dir /data/CAS(ME)^2
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import tensorflow_datasets as tfds

from mejax.annotations import casme_sq as casme_sq_sheet
from mejax.annotations import records
from tfds_builders import clip_builder

log = logging.getLogger(__name__)

ANNOTATION_GLOBS = ("*code_final*.xlsx", "*code_final*.xls", "*code_final*.csv")


@dataclasses.dataclass(eq=False)
class CasmeSqConfig(clip_builder.ClipConfig):
  """expression_type: which rows of the coding sheet ("micro", "macro" or "all")."""
  expression_type: str = "micro"


def _config(name: str, expression_type: str, release: str, description: str) -> CasmeSqConfig:
  return CasmeSqConfig(name=name, description=description, release=release,
                       cropped=release == "cropped", expression_type=expression_type)


class Builder(clip_builder.ClipBuilder):
  """CAS(ME)^2 cut samples (30 fps): macro- and micro-expressions with AUs and an estimated
  emotion that is already 3-class (negative/positive/surprise) or `others`."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  FPS = casme_sq_sheet.FPS
  BUILDER_CONFIGS = [
      _config("micro", "micro", "cropped",
              "57 micro-expressions, cropped release (cropped/<NN>/<id>/img<N>.jpg)."),
      _config("macro", "macro", "cropped",
              "300 macro-expressions, cropped release (cropped/<NN>/<id>/img<N>.jpg)."),
      _config("micro_raw", "micro", "selectedpic",
              "57 micro-expressions from selectedpic/s<NN>/<id>/img<N>.jpg, face-cropped."),
      _config("macro_raw", "macro", "selectedpic",
              "300 macro-expressions from selectedpic/s<NN>/<id>/img<N>.jpg, face-cropped."),
  ]
  DEFAULT_CONFIG_NAME = "micro"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request CAS(ME)^2 from its authors (Institute of Psychology, Chinese Academy of Sciences) and
pass the dataset's folder as --manual_dir. It must hold:
  CAS(ME)^2code_final.xlsx        the coding workbook (or CAS(ME)^2code_final(Updated).xlsx, or
                                  a .csv export of its first sheet named *code_final*.csv)
  cropped/15/anger1_1/img557.jpg ...       configs micro, macro (subject folder without 's')
  selectedpic/s15/anger1_1/img557.jpg ...  configs micro_raw, macro_raw
rawpic/ and rawvideo/ (the long videos) are not read.
"""

  def check_manual_dir(self, root: pathlib.Path) -> None:
    release = root / self.builder_config.release
    if not release.is_dir():
      found = sorted(p.name for p in root.iterdir())
      raise FileNotFoundError(
          f"{self.name}/{self.builder_config.name}: no {release.name}/ folder in {root} "
          f"(found: {found}). Expected:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    annotation_file(root)

  def parse_manual_dir(self, root: pathlib.Path) -> records.Parsed:
    path = annotation_file(root)
    log.info("%s: reading labels from %s", self.name, path.name)
    return casme_sq_sheet.parse(path, self.builder_config.repair,
                                expression_type=self.builder_config.expression_type)

  def frame_folder(self, root: pathlib.Path, sample: records.Sample) -> pathlib.Path:
    subject, expression_id = sample.clip.split("/")
    if self.builder_config.release == "cropped":
      subject = subject.lstrip("sS")  # cropped/15/..., not cropped/s15/...
    return root / self.builder_config.release / subject / expression_id

  def frame_pattern(self, sample: records.Sample) -> str:
    return r"img(?P<n>\d+)\.jpg(?:\.jpg)?"


def annotation_file(root: pathlib.Path) -> pathlib.Path:
  """The coding workbook in `root`: an .xlsx/.xls before a .csv export; among several, one
  named '(Updated)' (the MEGC2021+ revision) first, then by name."""
  for pattern in ANNOTATION_GLOBS:
    found = sorted(root.glob(pattern), key=lambda p: ("updated" not in p.name.lower(), p.name))
    if found:
      if len(found) > 1:
        log.warning("casme_sq: several coding files in %s (%s); using %s", root,
                    ", ".join(p.name for p in found), found[0].name)
      return found[0]
  raise FileNotFoundError(
      f"casme_sq: no coding workbook in {root}; looked for {', '.join(ANNOTATION_GLOBS)} "
      f"(e.g. CAS(ME)^2code_final.xlsx). Found: {sorted(p.name for p in root.iterdir())}")
