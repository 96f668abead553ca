"""CASME (v1) coding sheets (`Section A.xls`, `Section B.xls`) as records.

DATASETS.md §1. Each section of the raw release ships its own sheet next to its subject folders:

  CASME/RAW/CASME_A/Section A/Section A.xls      subjects 1-7:  Section A/sub01/<Filename>/
  CASME/RAW/CASME_B/Section B/Section B.xls      subjects >= 8: Section B/sub08/<Filename>/

Sheet `Sheet1`, header on row 1: `Subject` (an int), `Filename`, `OnsetF`, `ApexF1` (and an
`ApexF2` we do not use), `OffsetF`, an AU column, `Emotion`, plus unnamed blank columns. Columns
are found by header text; the spellings seen in loaders and cleaned copies are accepted
(OnsetF / Onset Frame, ApexF1 / ApexF / Apex Frame, OffsetF / Offset Frame, Action Units / AUs,
Emotion / Estimated Emotion). No public copy of these sheets exists: this parser follows the
documented columns and is tested on the dummy sheets of `tfds_builders/casme/dummy_data`.

Records: subject folder `sub%02d`; sample id `sub01/EP01_5`; `clip` is `<section>/<subject>/
<Filename>` where `<section>` is the sheet's file name without extension ("Section A"), the
folder the subject folders lie in. fps 60. A frame cell that is not a number (the known missing
apex) becomes -1, which `records.validate` skips or repairs.

Emotion `comtempt` is read as `contempt`: a third-party loader spells its key that way, possibly
copying a typo of the sheet (DATASETS.md marks it UNVERIFIED); the normalisation only renames that
one spelling, so it cannot hide anything else.

  python -m mejax.annotations casme "CASME/RAW"          # both sections
  python -m mejax.annotations casme "Section A.xls"
"""

from __future__ import annotations

import pathlib
import re

from mejax.annotations import records
from mejax.annotations import sheets
from mejax.annotations.casme2 import subject_folder

DATASET = "casme"
FPS = 60.0
SECTION_FILES = ("Section A.xls", "Section B.xls")
# Sheets are looked for this many folder levels below the path given (CASME/RAW/CASME_A/Section A).
SEARCH_DEPTH = 5
# The Emotion words seen in loaders' code (DATASETS.md §1; no public sheet to count them in),
# `comtempt` read as `contempt`; `mejax.data.labels` checks label maps against them.
EMOTIONS = ("contempt", "disgust", "fear", "happiness", "repression", "sadness", "surprise",
            "tense")

_SUBJECT = ("Subject",)
_FILENAME = ("Filename", "File name")
_ONSET = ("OnsetF", "Onset Frame", "OnsetFrame", "Onset")
_APEX = ("ApexF1", "ApexF", "Apex Frame", "ApexFrame", "Apex")
_OFFSET = ("OffsetF", "Offset Frame", "OffsetFrame", "Offset")
_AUS = ("Action Units", "AUs", "AU")
_EMOTION = ("Emotion", "Estimated Emotion")

# Spellings normalised to the emotion's name (documented in the module docstring).
_EMOTION_SPELLINGS = {"comtempt": "contempt"}


def _is_section_sheet(path: pathlib.Path) -> bool:
  return re.fullmatch(r"section\s*[a-z]\.xlsx?", path.name.lower()) is not None


def find_sections(root: str | pathlib.Path) -> list[pathlib.Path]:
  """The `Section ?.xls` sheets in `root` or up to SEARCH_DEPTH folder levels below it.

  Subject folders (`subNN`) are not descended into (they hold the frames). Raises
  FileNotFoundError listing what was searched when there is none, AnnotationError when one
  section's sheet is found twice.
  """
  root = pathlib.Path(root)
  found: list[pathlib.Path] = []
  level = [root] if root.is_dir() else []
  for _ in range(SEARCH_DEPTH + 1):
    below = []
    for folder in level:
      for path in sorted(folder.iterdir()):
        if path.is_dir():
          if not re.fullmatch(r"sub\d+", path.name, re.IGNORECASE):
            below.append(path)
        elif _is_section_sheet(path):
          found.append(path)
    level = below
  if not found:
    raise FileNotFoundError(
        f"{DATASET}: no section sheet {' / '.join(SECTION_FILES)} found in {root} or up to "
        f"{SEARCH_DEPTH} folder levels below it (expected CASME/RAW/CASME_A/Section A/"
        "Section A.xls and CASME/RAW/CASME_B/Section B/Section B.xls)")
  by_section: dict[str, pathlib.Path] = {}
  for path in found:
    section = path.stem.lower()
    if section in by_section:
      raise sheets.AnnotationError(
          f"{DATASET}: two sheets for {path.stem}: {by_section[section]} and {path}; keep the "
          "one in the folder that holds the section's subject folders")
    by_section[section] = path
  return sorted(found, key=lambda p: p.stem.lower())


def parse(path: str | pathlib.Path, repair: str = "skip") -> records.Parsed:
  """Samples of one section sheet, or of every section sheet found under a folder.

  repair: checked, not applied; `records.validate` (called by the builder) validates timing.
  """
  if repair not in records.REPAIR_POLICIES:
    raise ValueError(f"Unknown repair policy {repair!r}; expected one of "
                     f"{records.REPAIR_POLICIES}")
  path = pathlib.Path(path)
  if path.is_dir():
    parsed = records.Parsed()
    for sheet in find_sections(path):
      parsed.extend(parse_section(sheet))
    return parsed
  sheets.require_file(path, f"a section sheet ({' / '.join(SECTION_FILES)}) or a folder "
                            "holding them")
  return parse_section(path)


def parse_section(path: str | pathlib.Path) -> records.Parsed:
  path = pathlib.Path(path)
  sheet = "Sheet1" if "Sheet1" in sheets.sheet_names(path) else 0
  table = sheets.read_table(path, sheet, header_contains=("Subject", "Filename"))
  columns = {name: table.column(*names) for name, names in (
      ("subject", _SUBJECT), ("filename", _FILENAME), ("onset", _ONSET), ("apex", _APEX),
      ("offset", _OFFSET), ("aus", _AUS), ("emotion", _EMOTION))}
  section = path.stem
  parsed = records.Parsed()
  for row, cells in table.rows:
    cell, header = sheets.row_accessors(table, columns, cells)

    source = f"{path.name} row {row}"
    filename = sheets.text(cell("filename"))
    if not filename:
      subject_text = sheets.text(cell("subject"))
      parsed.skipped.append(records.no_filename(DATASET, subject_text, source))
      continue
    subject = subject_folder(cell("subject"), table, row, header("subject"))
    sample_id = f"{subject}/{filename}"
    emotion = sheets.text(cell("emotion")).lower()
    emotion = _EMOTION_SPELLINGS.get(emotion, emotion)
    if not emotion:
      parsed.skipped.append(records.Skip(DATASET, sample_id, source, "no Emotion"))
      continue
    # A frame cell that is not a number (blank, '/') is "not annotated" (-1); validate decides.
    onset, apex, offset = (sheets.integer(cell(name), table, row, header(name), missing=-1)
                           for name in ("onset", "apex", "offset"))
    parsed.samples.append(records.Sample(
        dataset=DATASET, sample_id=sample_id, subject=subject,
        clip=f"{section}/{subject}/{filename}", emotion=emotion,
        three_class=records.three_class(DATASET, emotion),
        action_units=sheets.text(cell("aus")), fps=FPS, onset=onset, apex=apex, offset=offset,
        source=source))
  return parsed
