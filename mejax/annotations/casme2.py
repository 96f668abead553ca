"""CASME II coding sheets (`CASME2-coding-*.xlsx`, `CASME2-ObjectiveClasses.xlsx`) as records.

DATASETS.md §2. The coding sheet (Sheet1, header on row 1) has the columns `Subject, Filename,
OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion`, two blank columns in the
2014 release, and a tenth `Objective Classes` column in the 2019 release. Columns are found by
their header text, so user-cleaned copies (blank columns removed, reordered) parse the same.

Quirks handled:
  * Subject is text (`'01'`); the subject's folder, and `Sample.subject`, is `sub01`.
  * ApexFrame `/` (sub04/EP12_01f): not a frame number, so apex = -1 ("not annotated"); the
    builder's `records.validate` skips the row with that reason, or repairs it on request.
  * Action Units are ints (`12`) or text (`'4+L10'`, `'?'`); kept as text, `?` included.
  * onset == apex (sub05/EP09_05f) is valid timing and kept (MEGC2019 dropped it; that is the
    composite's choice, not the sheet's).
  * Objective classes come from the sheet's own column when it has one, else from
    `CASME2-ObjectiveClasses.xlsx` (Sheet1; its Sheet2 holds scratch rows) when given, else 0.

  python -m mejax.annotations casme2 CASME2-coding-20140508.xlsx
"""

from __future__ import annotations

import logging
import pathlib
import re
from typing import Mapping

from mejax.annotations import records
from mejax.annotations import sheets

log = logging.getLogger(__name__)

DATASET = "casme2"
FPS = 200.0
CODING_GLOB = "CASME2-coding*.xls*"
OBJECTIVE_CLASSES_FILE = "CASME2-ObjectiveClasses.xlsx"
# The Estimated Emotion words of the coding sheets (2014 and 2019 releases), lower-cased as
# stored; `mejax.data.labels` checks label maps against them.
EMOTIONS = ("disgust", "fear", "happiness", "others", "repression", "sadness", "surprise")

_SUBJECT = ("Subject",)
_FILENAME = ("Filename", "File name")
_ONSET = ("OnsetFrame", "Onset Frame", "Onset")
_APEX = ("ApexFrame", "Apex Frame", "Apex")
_OFFSET = ("OffsetFrame", "Offset Frame", "Offset")
_AUS = ("Action Units", "AUs", "AU")
_EMOTION = ("Estimated Emotion", "Emotion")
_OBJECTIVE = ("Objective Classes", "Objective Class")

ObjectiveClasses = Mapping[tuple[str, str], int]


def subject_folder(value, table: sheets.Table, row: int, column: str) -> str:
  """`'01'` / `1` / `'sub01'` -> `'sub01'` (the folder the dataset writes)."""
  subject = sheets.text(value)
  match = re.fullmatch(r"(?:sub)?0*(\d+)", subject, re.IGNORECASE)
  if match is None:
    raise sheets.AnnotationError(f"{table.where(row, column)}: expected a subject number "
                                 f"like '01', got {value!r}")
  return f"sub{int(match.group(1)):02d}"


def _objective_class(value, table: sheets.Table, row: int, column: str) -> int:
  if sheets.text(value) == "":
    return 0
  number = sheets.integer(value, table, row, column)
  if not 1 <= number <= 7:
    raise sheets.AnnotationError(f"{table.where(row, column)}: objective class must be 1..7, "
                                 f"got {value!r}")
  return number


def _sheet(path: pathlib.Path) -> str | int:
  # The data is on Sheet1 (Sheet2/Sheet3 are empty or scratch); copies that renamed it: sheet 0.
  return "Sheet1" if "Sheet1" in sheets.sheet_names(path) else 0


def parse_objective_classes(path: str | pathlib.Path) -> dict[tuple[str, str], int]:
  """{(subject folder, filename): objective class} of `CASME2-ObjectiveClasses.xlsx` (Sheet1)."""
  path = pathlib.Path(path)
  table = sheets.read_table(path, _sheet(path), header_contains=("Subject", "Filename"))
  subject_col, filename_col = table.column(*_SUBJECT), table.column(*_FILENAME)
  class_col = table.column(*_OBJECTIVE)
  classes: dict[tuple[str, str], int] = {}
  for row, cells in table.rows:
    filename = sheets.text(cells[filename_col])
    if not filename:
      continue
    subject = subject_folder(cells[subject_col], table, row, table.header[subject_col])
    classes[(subject, filename)] = _objective_class(cells[class_col], table, row,
                                                    table.header[class_col])
  return classes


def _date_of(path: pathlib.Path) -> str:
  match = re.search(r"(\d{8})", path.name)
  return match.group(1) if match else ""


def find_annotation(root: str | pathlib.Path) -> tuple[pathlib.Path, pathlib.Path | None]:
  """(coding sheet, objective-classes file or None) in `root` or one folder level below it.

  Picks the newest `CASME2-coding-<yyyymmdd>.xlsx` by the date in its name. Raises
  FileNotFoundError listing the places searched when there is no coding sheet.
  """
  root = pathlib.Path(root)
  folders = [root] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
  coding, objective = [], []
  for folder in folders:
    for path in sorted(folder.iterdir()):
      if not path.is_file() or path.name.startswith("~$"):  # Excel lock files
        continue
      name = path.name.lower()
      if re.fullmatch(r"casme2-coding.*\.xlsx?", name):
        coding.append(path)
      elif name == OBJECTIVE_CLASSES_FILE.lower():
        objective.append(path)
  if not coding:
    searched = [str(root / CODING_GLOB), str(root / "*" / CODING_GLOB)]
    raise FileNotFoundError(f"{DATASET}: no CASME II coding sheet found; searched "
                            f"{searched} (expected e.g. CASME2-coding-20140508.xlsx or "
                            "CASME2-coding-20190701.xlsx)")
  newest = max(coding, key=lambda p: (_date_of(p), -len(p.relative_to(root).parts), p.name))
  return newest, (objective[0] if objective else None)


def parse(path: str | pathlib.Path, repair: str = "skip",
          objective_classes: ObjectiveClasses | str | pathlib.Path | None = None
          ) -> records.Parsed:
  """Samples of a CASME II coding sheet, or of the newest one in a folder (see find_annotation).

  repair: checked, not applied; timing is validated (and repaired) by `records.validate`,
    which the builders call, so the rows come back with their timing as annotated.
  objective_classes: {(subject folder, filename): class} from `parse_objective_classes`, or the
    path of `CASME2-ObjectiveClasses.xlsx`; used only when the sheet has no Objective Classes
    column. When `path` is a folder, its objective-classes file is used by default.
  """
  if repair not in records.REPAIR_POLICIES:
    raise ValueError(f"Unknown repair policy {repair!r}; expected one of "
                     f"{records.REPAIR_POLICIES}")
  path = pathlib.Path(path)
  if path.is_dir():
    path, found = find_annotation(path)
    if objective_classes is None:
      objective_classes = found
  else:
    sheets.require_file(path, "a CASME II coding sheet (CASME2-coding-*.xlsx) or a folder "
                              "holding it")
  if isinstance(objective_classes, (str, pathlib.Path)):
    objective_classes = parse_objective_classes(objective_classes)
  table = sheets.read_table(path, _sheet(path), header_contains=("Subject", "Filename"))
  columns = {name: table.column(*names) for name, names in (
      ("subject", _SUBJECT), ("filename", _FILENAME), ("onset", _ONSET), ("apex", _APEX),
      ("offset", _OFFSET), ("aus", _AUS), ("emotion", _EMOTION))}
  objective_col = table.column(*_OBJECTIVE, required=False)
  if objective_col is None and objective_classes is None:
    log.info("%s: %s has no Objective Classes column and no %s was given: objective class 0",
             DATASET, path.name, OBJECTIVE_CLASSES_FILE)

  parsed = records.Parsed()
  for row, cells in table.rows:
    cell, header = sheets.row_accessors(table, columns, cells)

    source = f"{path.name} row {row}"
    filename = sheets.text(cell("filename"))
    subject_text = sheets.text(cell("subject"))
    if not filename:
      parsed.skipped.append(records.no_filename(DATASET, subject_text, source))
      continue
    subject = subject_folder(cell("subject"), table, row, header("subject"))
    sample_id = f"{subject}/{filename}"
    emotion = sheets.text(cell("emotion")).lower()
    if not emotion:
      parsed.skipped.append(records.Skip(DATASET, sample_id, source, "no Estimated Emotion"))
      continue
    if objective_col is not None:
      objective = _objective_class(cells[objective_col], table, row, table.header[objective_col])
    elif objective_classes is not None:
      objective = objective_classes.get((subject, filename), 0)
    else:
      objective = 0
    # A frame cell that is not a number ('/', blank) is "not annotated" (-1); validate decides.
    onset, apex, offset = (sheets.integer(cell(name), table, row, header(name), missing=-1)
                           for name in ("onset", "apex", "offset"))
    parsed.samples.append(records.Sample(
        dataset=DATASET, sample_id=sample_id, subject=subject, clip=f"{subject}/{filename}",
        emotion=emotion, three_class=records.three_class(DATASET, emotion),
        action_units=sheets.text(cell("aus")), objective_class=objective, fps=FPS,
        onset=onset, apex=apex, offset=offset, source=source))
  if objective_col is None and objective_classes is not None:
    unmatched = [s.sample_id for s in parsed.samples if s.objective_class == 0]
    if unmatched:
      log.warning("%s: %d clip(s) have no row in the objective-classes file (class 0): %s",
                  DATASET, len(unmatched), unmatched[:5])
  return parsed
