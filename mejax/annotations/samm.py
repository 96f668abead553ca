"""SAMM's coding sheet (`SAMM_Micro_FACS_Codes_v2.xlsx`) as records, and where SAMM lies on disk.

DATASETS.md §5. One sheet, `MICRO_ONLY`, with a 13-row preamble (title, citation notes, symbol
key) above the header `Subject, Filename, Inducement Code, Onset Frame, Apex Frame, Offset Frame,
Duration, Micro, Action Units, Estimated Emotion, Objective Classes, Notes`. The header is found
by its names, not by its row, and columns by their header text, so copies with fewer preamble
rows or reordered columns parse the same. 159 rows, 29 subjects, 200 fps.

Quirks handled:
  * `Subject` is text with leading zeros (`'006'`), the name of the subject's folder. A copy that
    stores it as a number (6) is zero-padded back to 3 digits (`'006'`).
  * `Duration` is a formula (`=SUM(F15-D15)+1`); not read (it follows from onset and offset).
  * Action Units are ints (`4`) or text (`'4+7'`, `'R10A+25+26'`, `'12 or 14'`, `'4/7'`, `'?'`,
    trailing spaces `'12+15 '`): kept as coded, only the ends stripped.
  * Estimated Emotion is lower-cased (`'Anger'` -> `'anger'`); `'Other'` stays `'other'` (it has
    no MEGC 3-class label).
  * Apex typos in 028_4_1 (apex 1143 > offset 1134) and 032_3_1 (apex 1930 < onset 4896): the
    rows are returned as annotated (MEGC2019 uses both); `records.validate`, which the builder
    calls, skips them with that reason, or sets apex = midpoint under repair='midpoint'.

Layout: `SAMM/<subject>/<Filename>/<subject>_<frame:05d>.jpg` (frame = absolute frame number in
the long recording), the sheet in `SAMM/`.

  python -m mejax.annotations samm SAMM_Micro_FACS_Codes_v2.xlsx
"""

from __future__ import annotations

import logging
import pathlib
import re

from mejax.annotations import records
from mejax.annotations import sheets

log = logging.getLogger(__name__)

DATASET = "samm"
FPS = 200.0
ANNOTATION_FILE = "SAMM_Micro_FACS_Codes_v2.xlsx"
ANNOTATION_GLOB = "SAMM_Micro_FACS_Codes*.xlsx"
SHEET = "MICRO_ONLY"
# The Estimated Emotion words of the sheet, lower-cased as stored; `mejax.data.labels` checks
# label maps against them.
EMOTIONS = ("anger", "contempt", "disgust", "fear", "happiness", "other", "sadness", "surprise")

_SUBJECT = ("Subject",)
_FILENAME = ("Filename", "File name")
_ONSET = ("Onset Frame", "OnsetFrame", "Onset")
_APEX = ("Apex Frame", "ApexFrame", "Apex")
_OFFSET = ("Offset Frame", "OffsetFrame", "Offset")
_AUS = ("Action Units", "AUs", "AU")
_EMOTION = ("Estimated Emotion", "Emotion")
_OBJECTIVE = ("Objective Classes", "Objective Class")
# The names that identify the header row under the preamble.
_HEADER = ("Subject", "Filename", "Onset Frame")

_SUBJECT_FOLDER = re.compile(r"\d{3}")


def subject_folder(value, filename: str, table: sheets.Table, row: int, column: str) -> str:
  """`'006'` / `6` -> `'006'`; an empty cell takes the subject from the filename (`006_1_2`)."""
  subject = sheets.text(value)
  if not subject:
    subject = filename.split("_")[0]
    log.warning("%s: empty Subject; using %r from the Filename %r", table.where(row, column),
                subject, filename)
  if not subject.isdigit():
    raise sheets.AnnotationError(f"{table.where(row, column)}: expected a subject number like "
                                 f"'006', got {value!r}")
  # Copies that turned the text '006' into the number 6 lose the zeros of the folder name.
  return subject.zfill(3)


def _objective_class(value, table: sheets.Table, row: int, column: str) -> int:
  if sheets.text(value) == "":
    return 0
  number = sheets.integer(value, table, row, column)
  if not 1 <= number <= 7:
    raise sheets.AnnotationError(f"{table.where(row, column)}: objective class must be 1..7, "
                                 f"got {value!r}")
  return number


def _sheet(path: pathlib.Path) -> str | int:
  # The data sheet is MICRO_ONLY; copies that renamed it: the first sheet.
  return SHEET if SHEET in sheets.sheet_names(path) else 0


def release_root(root: str | pathlib.Path) -> pathlib.Path:
  """The folder holding SAMM's subject folders (`006/`, `007/`, ...): `root` itself when it is
  the `SAMM` folder, else the folder one level down that holds them (`root/SAMM`, preferred, or
  any other name, e.g. `SAMM_CROP`). Raises FileNotFoundError saying what is expected."""
  root = pathlib.Path(root)

  def has_subjects(folder: pathlib.Path) -> bool:
    return any(p.is_dir() and _SUBJECT_FOLDER.fullmatch(p.name) for p in folder.iterdir())

  if not root.is_dir():
    what = "is a file, not a folder" if root.exists() else "does not exist"
    raise FileNotFoundError(f"{DATASET}: folder {root} {what}")
  if has_subjects(root):
    return root
  below = sorted((p for p in root.iterdir() if p.is_dir()),
                 key=lambda p: (p.name != "SAMM", p.name))
  for folder in below:
    if has_subjects(folder):
      return folder
  raise FileNotFoundError(
      f"{DATASET}: no subject folders (006/, 007/, ... holding <Filename>/<subject>_<frame>.jpg) "
      f"in {root} or in a folder directly below it (expected {root}/SAMM/006/006_1_2/...)")


def find_annotation(root: str | pathlib.Path) -> pathlib.Path:
  """`SAMM_Micro_FACS_Codes_v2.xlsx` (or another `SAMM_Micro_FACS_Codes*.xlsx`) in `root` or
  one folder level below it. Prefers the exact v2 name, then the shallowest, then by name.
  Raises FileNotFoundError listing the places searched."""
  root = pathlib.Path(root)
  folders = [root] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
  found = []
  for folder in folders:
    for path in sorted(folder.glob(ANNOTATION_GLOB)):
      if path.is_file():
        found.append(path)
  if not found:
    searched = [str(root / ANNOTATION_GLOB), str(root / "*" / ANNOTATION_GLOB)]
    raise FileNotFoundError(f"{DATASET}: no SAMM coding sheet found; searched {searched} "
                            f"(expected {ANNOTATION_FILE})")
  chosen = min(found, key=lambda p: (p.name != ANNOTATION_FILE, len(p.relative_to(root).parts),
                                     p.name))
  if len(found) > 1:
    log.warning("%s: several coding sheets %s; using %s", DATASET,
                [str(p.relative_to(root)) for p in found], chosen.relative_to(root))
  return chosen


def parse(path: str | pathlib.Path, repair: str = "skip") -> records.Parsed:
  """Samples of SAMM's coding sheet, or of the one found in a folder (see find_annotation).

  repair: checked, not applied; timing is validated (and repaired) by `records.validate`,
    which the builders call, so the rows come back with their timing as annotated.
  """
  if repair not in records.REPAIR_POLICIES:
    raise ValueError(f"Unknown repair policy {repair!r}; expected one of "
                     f"{records.REPAIR_POLICIES}")
  path = pathlib.Path(path)
  if path.is_dir():
    path = find_annotation(path)
  sheets.require_file(path, f"SAMM's coding sheet {ANNOTATION_FILE} or a folder holding it")
  table = sheets.read_table(path, _sheet(path), header_contains=_HEADER)
  columns = {name: table.column(*names) for name, names in (
      ("subject", _SUBJECT), ("filename", _FILENAME), ("onset", _ONSET), ("apex", _APEX),
      ("offset", _OFFSET), ("aus", _AUS), ("emotion", _EMOTION))}
  objective_col = table.column(*_OBJECTIVE, required=False)

  parsed = records.Parsed()
  for row, cells in table.rows:
    cell, header = sheets.row_accessors(table, columns, cells)

    source = f"{path.name} row {row}"
    filename = sheets.text(cell("filename"))
    if not filename:
      # Notes below the table, or a row whose clip folder is unknown.
      subject_text = sheets.text(cell("subject"))
      parsed.skipped.append(records.no_filename(DATASET, subject_text, source))
      continue
    subject = subject_folder(cell("subject"), filename, table, row, header("subject"))
    sample_id = f"{subject}/{filename}"
    emotion = sheets.text(cell("emotion")).lower()
    if not emotion:
      parsed.skipped.append(records.Skip(DATASET, sample_id, source, "no Estimated Emotion"))
      continue
    objective = 0
    if objective_col is not None:
      objective = _objective_class(cells[objective_col], table, row, table.header[objective_col])
    # A frame cell that is not a number ('?', blank) is "not annotated" (-1); validate decides.
    onset, apex, offset = (sheets.integer(cell(name), table, row, header(name), missing=-1)
                           for name in ("onset", "apex", "offset"))
    parsed.samples.append(records.Sample(
        dataset=DATASET, sample_id=sample_id, subject=subject, clip=f"{subject}/{filename}",
        emotion=emotion, three_class=records.three_class(DATASET, emotion),
        action_units=sheets.text(cell("aus")), objective_class=objective, fps=FPS,
        onset=onset, apex=apex, offset=offset, source=source))
  return parsed
