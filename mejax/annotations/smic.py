"""SMIC (HS, VIS, NIR) and SMIC-E annotations as records: folder labels and the SMIC-E workbook.

DATASETS.md §4. Two sources of labels:

`parse(path, camera="HS")`: SMIC's cut clips ship no label sheet; the label is the class folder:
    SMIC_all_raw/{HS,VIS,NIR}/s1 ... s20/micro/{negative,positive,surprise}/s1_ne_01/image<n>.bmp
    SMIC_all_cropped/{HS,VIS,NIR}/...the same tree...
  `path` is the release folder (`SMIC_all_raw`, `SMIC_all_cropped`) or its camera folder.
  Subject folders and clip names are not zero-padded (`s1`, `s1_ne_01`). The labels already are
  the MEGC 3 classes (three_class = emotion). No onset/apex/offset: -1, the whole folder is the
  clip. `sN/non_micro/` holds non-expression clips and is not read. A clip whose name codes
  another class (`s1_po_03` under `negative/`) keeps its folder's label and is logged.
  HS (100 fps): 164 clips of 16 subjects, negative 70 / positive 51 / surprise 43 (the MEGC2019
  SMIC part); VIS and NIR (25 fps): 71 clips of 8 subjects. No sheet exists to check these here.

`parse_e(path, sheet="HS")`: the SMIC-E workbook `SMIC-HS-E_annotation.xlsx` (long clips in
  `SMIC-E_raw image/HS_long/SMIC-HS-E/s01/s1_ne_01/image<frame:06d>.jpg`; subject folders are
  zero-padded, clip names are not). Sheets `HS` and `VIS` (header row 1, found by name):
  `Subject | Filename | OnsetF | OffsetF | Onset2F | Offset2F | FirstF | LastF (HS only) |
  TotalMF1 | TotalMF2 | TotalVL | Emotion`. HS cells are formulas on the VIS sheet; their cached
  values are read (a workbook saved by a tool that does not compute formulas has none: those
  cells read empty and the rows are skipped as not annotated, with a warning saying why).
  Frame numbers are absolute (= image file numbers); SMIC has no apex (-1).
  Quirks handled:
    * Onset2F/Offset2F: a second micro-expression in the same clip folder. It becomes a second
      sample `<subject folder>/<clip>_2` (e.g. `s20/s20_ne_06_2`) with its own onset/offset;
      the first keeps the plain clip name, as MEGC2019 names it.
    * `s18_sur_03` has Emotion `negative` (in both sheets): the sheet's label is kept and a
      warning names the row. Any row whose Emotion disagrees with its name's code is logged so.
    * The HS sheet has 162 rows (no `s1_ne_02`, `s2_sur_05`): negative 70, positive 51,
      surprise 41, 16 subjects; 5 rows have a second ME (167 samples). VIS: 71 rows, positive
      28, negative 24, surprise 19, 8 subjects (11-15, 18-20); 5 second MEs (76 samples).
    * Trailing empty rows are ignored.

Sample ids: `<subject folder>/<clip>` for HS (`s1/s1_ne_01`; SMIC-E `s01/s1_ne_01`), the camera
first for VIS and NIR (`VIS/s11/s11_ne_01`): the three cameras filmed the same expressions under
the same clip names, and a composite of several cameras needs ids unique within dataset "smic".
HS keeps the plain ids MEGC2019's ground truth is matched against (mejax.data.megc2019), and
subjects stay `sN` in every camera, so a subject's clips of all cameras share one LOSO fold.

  python -m mejax.annotations smic SMIC_all_cropped
  python -m mejax.annotations smic_e SMIC-HS-E_annotation.xlsx
"""

from __future__ import annotations

import logging
import pathlib
import re

from mejax.annotations import records
from mejax.annotations import sheets

log = logging.getLogger(__name__)

DATASET = "smic"
CAMERAS = ("HS", "VIS", "NIR")
FPS = {"HS": 100.0, "VIS": 25.0, "NIR": 25.0}
CLASSES = ("negative", "positive", "surprise")
# The emotion code of a clip name (`s1_ne_01`, `s9_sur_03`).
CODES = {"ne": "negative", "po": "positive", "sur": "surprise"}

_SUBJECT_FOLDER = re.compile(r"s(\d+)", re.IGNORECASE)
_CLIP_NAME = re.compile(r"s(?P<subject>\d+)_(?P<code>[a-z]+)_(?P<n>\d+)", re.IGNORECASE)

_SUBJECT = ("Subject",)
_FILENAME = ("Filename", "File name")
_ONSET = ("OnsetF", "Onset Frame", "Onset")
_OFFSET = ("OffsetF", "Offset Frame", "Offset")
_ONSET2 = ("Onset2F", "Onset2")
_OFFSET2 = ("Offset2F", "Offset2")
_EMOTION = ("Emotion", "Estimated Emotion")
_HEADER = ("Subject", "Filename", "OnsetF")


def _check_repair(repair: str) -> None:
  if repair not in records.REPAIR_POLICIES:
    raise ValueError(f"Unknown repair policy {repair!r}; expected one of "
                     f"{records.REPAIR_POLICIES}")


def _check_camera(camera: str) -> str:
  camera = camera.upper()
  if camera not in CAMERAS:
    raise ValueError(f"Unknown SMIC camera {camera!r}; expected one of {CAMERAS}")
  return camera


def sample_id(camera: str, clip: str) -> str:
  """The sample id of `clip` (`<subject folder>/<clip>`) filmed by `camera` (module docstring)."""
  camera = _check_camera(camera)
  return clip if camera == "HS" else f"{camera}/{clip}"


def _code_mismatch(clip: str, emotion: str) -> str | None:
  """The class a clip name codes when it differs from `emotion` (None when they agree or the
  name carries no known code)."""
  match = _CLIP_NAME.fullmatch(clip)
  if match is None:
    return None
  coded = CODES.get(match.group("code").lower())
  return coded if coded is not None and coded != emotion else None


# ---- SMIC: labels from folders -----------------------------------------------------------------
def camera_folder(path: str | pathlib.Path, camera: str) -> pathlib.Path:
  """`path/<camera>` of a release folder, or `path` itself when it is that camera's folder."""
  path = pathlib.Path(path)
  camera = _check_camera(camera)
  if not path.is_dir():
    what = "it is a file; " if path.exists() else ""
    raise FileNotFoundError(f"{DATASET}: release folder not found: {path} ({what}expected "
                            f"SMIC_all_cropped or SMIC_all_raw holding {'/'.join(CAMERAS)}/)")
  if (path / camera).is_dir():
    return path / camera
  if path.name.upper() == camera:
    return path
  raise FileNotFoundError(
      f"{DATASET}: no {camera}/ folder in {path} (expected {path}/{camera}/s1/micro/"
      f"{{negative,positive,surprise}}/s1_ne_01/image<frame>.bmp); it holds "
      f"{sorted(p.name for p in path.iterdir())[:10]}")


def parse(path: str | pathlib.Path, repair: str = "skip", camera: str = "HS") -> records.Parsed:
  """Samples of one camera of a SMIC release, labelled by their class folders.

  Sample.clip is the clip folder relative to the release folder (`HS/s1/micro/negative/
  s1_ne_01`), and Sample.source the same folder; Sample.sample_id `sample_id(camera, ...)`.
  repair: checked, not applied (these samples have no timing to repair).
  """
  _check_repair(repair)
  camera = _check_camera(camera)
  folder = camera_folder(path, camera)
  subjects = sorted((p for p in folder.iterdir()
                     if p.is_dir() and _SUBJECT_FOLDER.fullmatch(p.name)),
                    key=lambda p: int(_SUBJECT_FOLDER.fullmatch(p.name).group(1)))
  if not subjects:
    raise FileNotFoundError(f"{DATASET}: no subject folders (s1, s2, ...) in {folder}")
  parsed = records.Parsed()
  for subject_dir in subjects:
    subject = subject_dir.name
    micro = subject_dir / "micro"
    if not micro.is_dir():
      # Subjects without micro-expressions have only non_micro/ (or nothing).
      log.info("%s: %s has no micro/ folder", DATASET, subject_dir)
      continue
    for class_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
      relative = f"{folder.name}/{subject}/micro/{class_dir.name}"
      emotion = class_dir.name.lower()
      if emotion not in CLASSES:
        parsed.skipped.append(records.Skip(
            DATASET, sample_id(camera, f"{subject}/{class_dir.name}"), relative,
            f"unknown class folder {class_dir.name!r}; expected one of {CLASSES}"))
        continue
      for clip_dir in sorted(p for p in class_dir.iterdir() if p.is_dir()):
        clip = clip_dir.name
        source = f"{relative}/{clip}"
        coded = _code_mismatch(clip, emotion)
        if coded is not None:
          log.warning("%s: %s is named as %s but lies in the %s folder; keeping the folder's "
                      "label %r", DATASET, source, coded, class_dir.name, emotion)
        parsed.samples.append(records.Sample(
            dataset=DATASET, sample_id=sample_id(camera, f"{subject}/{clip}"), subject=subject,
            clip=source,
            emotion=emotion, three_class=emotion, fps=FPS[camera], source=source))
  return parsed


# ---- SMIC-E: the long-clip workbook ------------------------------------------------------------
def subject_folder(value, table: sheets.Table, row: int, column: str) -> str:
  """SMIC-E subject folder: `1` / `'1'` / `'s1'` / `'s01'` -> `'s01'` (zero-padded)."""
  subject = sheets.text(value)
  match = re.fullmatch(r"s?0*(\d+)", subject, re.IGNORECASE)
  if match is None:
    raise sheets.AnnotationError(f"{table.where(row, column)}: expected a subject number, got "
                                 f"{value!r}")
  return f"s{int(match.group(1)):02d}"


def e_sheet(path: str | pathlib.Path, camera: str) -> str:
  """The sheet of a SMIC-E workbook holding `camera`'s rows: the sheet named after the camera,
  else the first sheet with a Filename/OnsetF header that is not named after another camera."""
  camera = _check_camera(camera)
  names = sheets.sheet_names(path)
  for name in names:
    if name.strip().upper() == camera:
      return name
  for name in names:
    if name.strip().upper() in CAMERAS:
      continue
    try:
      sheets.read_table(path, name, header_contains=_HEADER)
    except sheets.AnnotationError:
      continue
    return name
  raise sheets.AnnotationError(f"{path}: no sheet with the {camera} rows (sheets {names}; "
                               f"expected one named {camera!r})")


def parse_e(path: str | pathlib.Path, repair: str = "skip", sheet: str = "HS",
            fps: float | None = None, camera: str | None = None) -> records.Parsed:
  """Samples of one sheet of a SMIC-E workbook (HS or VIS; NIR workbooks: see e_sheet).

  Sample.clip is the clip folder relative to the camera's `SMIC-<CAM>-E` folder
  (`s01/s1_ne_01`); Sample.source `<workbook> [<sheet>] row <n>`; Sample.sample_id
  `sample_id(camera, clip)`. camera: the sheet's name when it names one, else give it (or its
  fps: HS ids then). fps: 100 for HS, 25 for VIS/NIR, else give it. repair: checked, not applied
  (`records.validate` does the checks).
  """
  _check_repair(repair)
  path = pathlib.Path(path)
  sheets.require_file(path, "a SMIC-E annotation workbook such as SMIC-HS-E_annotation.xlsx")
  names = sheets.sheet_names(path)
  if sheet not in names:
    raise sheets.AnnotationError(f"{path}: no sheet {sheet!r} (sheets: {names})")
  if camera is None and sheet.strip().upper() in CAMERAS:
    camera = sheet.strip().upper()
  if fps is None:
    if camera is None:
      raise ValueError(f"{DATASET}: sheet {sheet!r} is not named after a camera "
                       f"{CAMERAS}; give its fps")
    fps = FPS[_check_camera(camera)]
  camera = _check_camera(camera or "HS")
  table = sheets.read_table(path, sheet, header_contains=_HEADER)
  columns = {name: table.column(*names) for name, names in (
      ("subject", _SUBJECT), ("filename", _FILENAME), ("onset", _ONSET), ("offset", _OFFSET),
      ("emotion", _EMOTION))}
  onset2_col = table.column(*_ONSET2, required=False)
  offset2_col = table.column(*_OFFSET2, required=False)

  parsed = records.Parsed()
  uncomputed = []
  for row, cells in table.rows:
    cell, header = sheets.row_accessors(table, columns, cells)

    source = table.where(row)
    filename = sheets.text(cell("filename"))
    if not filename:
      subject_text = sheets.text(cell("subject"))
      parsed.skipped.append(records.no_filename(DATASET, subject_text, source))
      continue
    subject = subject_folder(cell("subject"), table, row, header("subject"))
    clip = f"{subject}/{filename}"
    named = _CLIP_NAME.fullmatch(filename)
    if named is not None and int(named.group("subject")) != int(subject[1:]):
      log.warning("%s: Subject %s but the Filename %r names subject s%s; the folder used is %s",
                  source, sheets.text(cell("subject")), filename, named.group("subject"), clip)
    emotion = sheets.text(cell("emotion")).lower()
    if emotion not in CLASSES:
      reason = ("no Emotion" if not emotion else
                f"Emotion {emotion!r} is not one of {CLASSES}")
      parsed.skipped.append(records.Skip(DATASET, sample_id(camera, clip), source, reason))
      continue
    coded = _code_mismatch(filename, emotion)
    if coded is not None:
      log.warning("%s: %s is named as %s but its Emotion is %r; keeping the sheet's label",
                  source, filename, coded, emotion)
    # Not a number (or a formula without a cached value) -> -1, "not annotated": validate skips.
    onset = sheets.integer(cell("onset"), table, row, header("onset"), missing=-1)
    offset = sheets.integer(cell("offset"), table, row, header("offset"), missing=-1)
    if (onset < 0) != (offset < 0):
      uncomputed.append(row)
    common = dict(dataset=DATASET, subject=subject, clip=clip, emotion=emotion,
                  three_class=emotion, fps=float(fps))
    parsed.samples.append(records.Sample(sample_id=sample_id(camera, clip), onset=onset,
                                         offset=offset,
                                         source=source, **common))
    if onset2_col is None or offset2_col is None:
      continue
    second = [cells[onset2_col], cells[offset2_col]]
    if all(sheets.text(v) == "" for v in second):
      continue
    onset2 = sheets.integer(second[0], table, row, table.header[onset2_col], missing=-1)
    offset2 = sheets.integer(second[1], table, row, table.header[offset2_col], missing=-1)
    if (onset2 < 0) != (offset2 < 0):
      uncomputed.append(row)
    parsed.samples.append(records.Sample(
        sample_id=sample_id(camera, f"{clip}_2"), onset=onset2, offset=offset2,
        source=f"{source} ({table.header[onset2_col]}/{table.header[offset2_col]})", **common))
  if uncomputed:
    log.warning("%s [%s]: rows %s have an onset without an offset (or the reverse); in the "
                "original workbook those cells are formulas: if this copy was saved by a tool "
                "that does not compute formulas, open and save it in Excel or LibreOffice",
                path.name, sheet, uncomputed[:10])
  return parsed
