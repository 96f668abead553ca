"""CAS(ME)^2 coding workbook (`CAS(ME)^2code_final*.xlsx`, or a CSV export of its first sheet).

The workbook (DATASETS.md §3) has three sheets:
  [0] the coding sheet (named `CASFEcode_final` or `CASMEcode_final`; opened by index), with NO
      header row and 9 columns, read by position:
        participant (1-22) | expression id `<video>_<k>` (`anger1_1`) | onset | apex | offset |
        AUs | estimated emotion | expression type | self-reported emotion
  [1] `naming rule1`: participant <-> subject folder (`1` <-> `s15`);
  [2] `naming rule2`: 4-digit video code (`0101`, or the number 101) <-> video name (`disgust1`).
A CSV export has only the coding sheet (the public one appends two columns, `offset - onset`
and the raw video folder `s15/15_0401girlcrashing`, which are ignored); the naming rules then
come from the mapping documented in DATASETS.md (`PARTICIPANT_FOLDERS`, `VIDEO_CODES`). The
workbook's own sheets are preferred when present.

Since no header names the columns, each column's content is checked (participant a whole number
with a subject folder, expression id `<known video>_<k>`, frames whole numbers, type
macro-/micro-expression, emotion negative/positive/surprise/others): a copy with shifted
columns fails with the file, row and column rather than yielding wrong records.

Quirks handled:
  * offset (or apex) 0 means "not annotated" (44 macro rows have offset 0; one has apex 0):
    it becomes -1, so `records.validate` keeps the row out with its reason, or repairs a
    missing apex under repair="midpoint" (a missing offset cannot be repaired);
  * AU cells `null` / `NULL` / empty mean "not coded" -> "";
  * the estimated emotion is already 3-class plus `others`: three_class = the emotion for
    negative/positive/surprise, "" for others;
  * the self-reported emotion (last column; includes the typo `happyiness`) is not stored: the
    uniform schema has no field for it and the estimated emotion is the label used by MEGC.
Subjects are the subject folders (`s15`); sample ids `s15/anger1_1`; 30 fps.
"""

from __future__ import annotations

import logging
import pathlib
import re

from mejax.annotations import records
from mejax.annotations import sheets
from mejax.annotations.sheets import AnnotationError

log = logging.getLogger(__name__)

DATASET = "casme_sq"
FPS = 30.0
EXPRESSION_TYPES = ("micro", "macro", "all")

# naming rule1 (DATASETS.md §3): participant -> subject folder.
PARTICIPANT_FOLDERS = {
    1: "s15", 2: "s16", 3: "s19", 4: "s20", 5: "s21", 6: "s22", 7: "s23", 8: "s24", 9: "s25",
    10: "s26", 11: "s27", 12: "s29", 13: "s30", 14: "s31", 15: "s32", 16: "s33", 17: "s34",
    18: "s35", 19: "s36", 20: "s37", 21: "s38", 22: "s40",
}
# naming rule2: 4-digit video code -> video name (the expression id's prefix).
VIDEO_CODES = {
    "0101": "disgust1", "0102": "disgust2", "0401": "anger1", "0402": "anger2",
    "0502": "happy1", "0503": "happy2", "0505": "happy3", "0507": "happy4", "0508": "happy5",
}

_EMOTIONS = ("negative", "positive", "surprise", "others")
# The estimated emotions as stored; `mejax.data.labels` checks label maps against them.
EMOTIONS = _EMOTIONS
_TYPES = {"macro-expression": "macro", "micro-expression": "micro"}
_NOT_CODED_AUS = {"", "null", "none", "/"}
_EXPRESSION_ID = re.compile(r"(?P<video>[a-z]+\d+)_(?P<k>\d+)")
_FOLDER = re.compile(r"s\d+", re.IGNORECASE)

# Column positions of the headerless coding sheet, with the names used in error messages.
_COLUMNS = ("participant", "expression id", "onset", "apex", "offset", "AUs",
            "estimated emotion", "expression type", "self-reported emotion")
PARTICIPANT, EXPRESSION_ID, ONSET, APEX, OFFSET, AUS, EMOTION, TYPE = range(8)


def parse(path: str | pathlib.Path, repair: str = "skip",
          expression_type: str = "micro") -> records.Parsed:
  """Samples of the coding workbook (or its CSV export) at `path`.

  expression_type: "micro" (the 57 micro-expressions), "macro" (the 300 macro-expressions) or
  "all". Timing is returned as annotated (0 -> -1, "not annotated"); `records.validate`, which
  the builder calls with `repair`, keeps unusable rows out.
  """
  if repair not in records.REPAIR_POLICIES:
    raise ValueError(f"Unknown repair policy {repair!r}; expected one of "
                     f"{records.REPAIR_POLICIES}")
  if expression_type not in EXPRESSION_TYPES:
    raise ValueError(f"Unknown expression_type {expression_type!r}; expected one of "
                     f"{EXPRESSION_TYPES}")
  path = pathlib.Path(path)
  participants, videos = naming_rules(path)
  table = sheets.headerless_table(path, 0)
  if len(table.header) < len(_COLUMNS) - 1:
    raise AnnotationError(
        f"{path}: sheet {table.sheet!r} has {len(table.header)} columns; the CAS(ME)^2 coding "
        f"sheet has {len(_COLUMNS)}: {', '.join(_COLUMNS)}")
  rows = table.rows
  if rows and _is_header(rows[0][1]):
    log.info("%s: first row taken as a header: %s", path.name, rows[0][1][:len(_COLUMNS)])
    rows = rows[1:]
  parsed = records.Parsed()
  for number, cells in rows:
    sample, kind = _sample(table, number, cells, participants, videos)
    if expression_type in ("all", kind):
      parsed.samples.append(sample)
  return parsed


def naming_rules(path: pathlib.Path) -> tuple[dict[int, str], dict[str, str]]:
  """(participant -> subject folder, video code -> video name): from the workbook's `naming
  rule1`/`naming rule2` sheets when it has them, else the documented defaults."""
  path = sheets.require_file(path, "the CAS(ME)^2 coding workbook (CAS(ME)^2code_final*.xlsx) "
                                   "or a CSV export of its first sheet")
  participants, videos = dict(PARTICIPANT_FOLDERS), dict(VIDEO_CODES)
  if path.suffix.lower() not in (".xlsx", ".xls"):
    return participants, videos
  names = {re.sub(r"\s+", "", n).lower(): n for n in sheets.sheet_names(path)}
  if "namingrule1" in names:
    participants = _rule1(path, names["namingrule1"])
  else:
    log.info("%s: no 'naming rule1' sheet; using the documented participant folders", path.name)
  if "namingrule2" in names:
    videos = _rule2(path, names["namingrule2"])
  else:
    log.info("%s: no 'naming rule2' sheet; using the documented video codes", path.name)
  return participants, videos


def _rule1(path: pathlib.Path, sheet: str) -> dict[int, str]:
  # Rows hold the folder number (15), the folder ('s15') and the participant (1); the
  # participant is the first whole number right of the folder cell. Other rows (a header,
  # notes) are ignored.
  _, cells = sheets.read_cells(path, sheet)
  mapping = {}
  for row in cells:
    texts = [sheets.text(v) for v in row]
    folder_at = next((i for i, t in enumerate(texts) if _FOLDER.fullmatch(t)), None)
    if folder_at is None:
      continue
    number = next((t for t in texts[folder_at + 1:] if re.fullmatch(r"\d+", t)), None)
    if number is not None:
      mapping[int(number)] = texts[folder_at].lower()
  if not mapping:
    raise AnnotationError(f"{path}: sheet {sheet!r} maps no participant to a subject folder "
                          "(expected rows like 15 | s15 | 1)")
  return mapping


def _rule2(path: pathlib.Path, sheet: str) -> dict[str, str]:
  # Rows hold the video code (text '0101' or the number 101) and the video name ('disgust1').
  _, cells = sheets.read_cells(path, sheet)
  mapping = {}
  for row in cells:
    texts = [sheets.text(v) for v in row]
    if len(texts) >= 2 and re.fullmatch(r"\d{1,4}", texts[0]) and texts[1]:
      mapping[texts[0].zfill(4)] = texts[1].lower()
  if not mapping:
    raise AnnotationError(f"{path}: sheet {sheet!r} maps no video code to a name "
                          "(expected rows like 0101 | disgust1)")
  return mapping


def _is_header(cells: list) -> bool:
  """A first row of text only: no number in the participant and frame columns, no type."""
  numbers = [sheets.text(cells[i]) for i in (PARTICIPANT, ONSET, APEX, OFFSET)]
  kind = sheets.text(cells[TYPE]).lower()
  return not any(re.fullmatch(r"\d+", n) for n in numbers) and kind not in _TYPES


def _column(index: int) -> str:
  return f"{index + 1} ({_COLUMNS[index]})"


def _sample(table: sheets.Table, number: int, cells: list, participants: dict[int, str],
            videos: dict[str, str]) -> tuple[records.Sample, str]:
  def fail(index: int, expected: str):
    raise AnnotationError(f"{table.where(number, _column(index))}: expected {expected}, got "
                          f"{cells[index]!r} (is a column missing or shifted? the sheet has no "
                          f"header; its columns are {', '.join(_COLUMNS)})")

  participant_text = sheets.text(cells[PARTICIPANT])
  if not re.fullmatch(r"\d+", participant_text):
    fail(PARTICIPANT, "a participant number")
  participant = int(participant_text)
  if participant not in participants:
    fail(PARTICIPANT, f"a participant of the naming rule ({min(participants)}-"
                      f"{max(participants)})")
  subject = participants[participant]

  expression_id = sheets.text(cells[EXPRESSION_ID])
  match = _EXPRESSION_ID.fullmatch(expression_id)
  if match is None:
    fail(EXPRESSION_ID, "an expression id '<video>_<k>' such as 'anger1_1'")
  if match.group("video") not in videos.values():
    fail(EXPRESSION_ID, f"an expression id of a known video ({', '.join(videos.values())})")

  frames = []
  for index in (ONSET, APEX, OFFSET):
    value = sheets.text(cells[index])
    if value == "":
      frames.append(-1)
      continue
    try:
      frame = float(value)
    except ValueError:
      frame = -1.0
    if frame < 0 or not frame.is_integer():
      fail(index, "a frame number")
    frames.append(int(frame) if frame > 0 else -1)  # 0 = not annotated; frames count from 1
  onset, apex, offset = frames

  kind = _TYPES.get(sheets.text(cells[TYPE]).lower())
  if kind is None:
    fail(TYPE, f"an expression type ({' or '.join(_TYPES)})")
  emotion = sheets.text(cells[EMOTION]).lower()
  if emotion not in _EMOTIONS:
    fail(EMOTION, f"an estimated emotion ({', '.join(_EMOTIONS)})")
  aus = sheets.text(cells[AUS])
  if aus.lower() in _NOT_CODED_AUS:
    aus = ""

  sample_id = f"{subject}/{expression_id}"
  sample = records.Sample(
      dataset=DATASET, sample_id=sample_id, subject=subject, clip=sample_id, emotion=emotion,
      three_class=emotion if emotion != "others" else "", action_units=aus, fps=FPS,
      onset=onset, apex=apex, offset=offset, source=f"{table.path.name} row {number}")
  return sample, kind


def video_code(sample: records.Sample, videos: dict[str, str] | None = None) -> str:
  """The 4-digit code of a sample's video (`s15/anger1_1` -> '0401'), as raw folders name it."""
  videos = VIDEO_CODES if videos is None else videos
  name = sample.sample_id.split("/", 1)[1].rsplit("_", 1)[0]
  return {v: k for k, v in videos.items()}[name]
