"""Annotation spreadsheets (xlsx, xls, csv) as rows of Python values, columns found by header name.

Formula cells are read as the values the workbook cached (openpyxl `data_only=True`; xlrd and csv
only ever see values). Columns are located by their header text, never by position: user-cleaned
copies of the sheets drop blank columns or reorder them.

Every reading problem (a missing or empty file, a folder, no read permission, a damaged or
truncated workbook, a file of another format) is raised as one AnnotationError (FileNotFoundError
for a path that is not a file) naming the file and what was expected, never as the reader's own
exception.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import pathlib
import re
import warnings
from typing import Any, Sequence

SHEET_FORMATS = ".xlsx, .xls or .csv"
# What a file of each suffix must be, for error messages.
_FORMAT_NAMES = {".xlsx": "an .xlsx workbook", ".xls": "an .xls (Excel 97-2003) workbook",
                 ".csv": "a CSV text file", ".txt": "a CSV text file"}
# Leading bytes of the other formats, to say what a misnamed file really is.
_MAGIC = ((b"PK\x03\x04", ".xlsx"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", ".xls"))


class AnnotationError(ValueError):
  """An annotation file or cell is not what the dataset's documented format says."""


@dataclasses.dataclass
class Table:
  path: pathlib.Path
  sheet: str
  header: list[str]                   # normalised header texts ("" for blank header cells)
  rows: list[tuple[int, list[Any]]]   # (1-based row number in the file, cell values)

  def where(self, row: int, column: str | None = None) -> str:
    cell = f", column {column!r}" if column else ""
    return f"{self.path.name} [{self.sheet}] row {row}{cell}"

  def column(self, *names: str, required: bool = True) -> int | None:
    """Index of the first header matching one of `names` (case, spaces and '_' ignored)."""
    wanted = [_key(n) for n in names]
    for name in wanted:
      for index, header in enumerate(self.header):
        if _key(header) == name:
          return index
    if required:
      raise AnnotationError(
          f"{self.path}: sheet {self.sheet!r} has no column {' / '.join(map(repr, names))}; "
          f"its header row is {[h for h in self.header if h]}")
    return None


def row_accessors(table: Table, columns: dict[str, int], cells: list[Any]):
  """(cell(name), header(name)) of one row of `table`: its value and its column's header text,
  for the column indices `columns` located by name (`Table.column`)."""
  return (lambda name: cells[columns[name]]), (lambda name: table.header[columns[name]])


def _key(text: str) -> str:
  return re.sub(r"[\s_]+", "", str(text)).lower()


def require_file(path: str | pathlib.Path, expected: str) -> pathlib.Path:
  """`path` as a Path when it is a file; else FileNotFoundError saying what it is instead and
  what was `expected` there (e.g. "an annotation sheet (.xlsx, .xls or .csv)")."""
  path = pathlib.Path(path)
  if path.is_file():
    return path
  raise FileNotFoundError(f"{path}: {_what_is(path)}; expected {expected}")


def require_folder(path: str | pathlib.Path, expected: str) -> pathlib.Path:
  """`path` as a Path when it is a folder; else FileNotFoundError saying what it is instead."""
  path = pathlib.Path(path)
  if path.is_dir():
    return path
  raise FileNotFoundError(f"{path}: {_what_is(path)}; expected {expected}")


def _what_is(path: pathlib.Path) -> str:
  if path.is_dir():
    return "is a folder, not a file"
  if path.is_file():
    return "is a file, not a folder"
  if path.exists():
    return "is not a regular file"
  return "does not exist"


def _format_name(path: pathlib.Path) -> str:
  return _FORMAT_NAMES.get(path.suffix.lower(), f"an annotation sheet ({SHEET_FORMATS})")


def _looks_like(path: pathlib.Path) -> str:
  """' (it looks like an .xls workbook)' when the file's first bytes are another format's."""
  try:
    with open(path, "rb") as file:
      start = file.read(8)
  except OSError:
    return ""
  for magic, suffix in _MAGIC:
    if start.startswith(magic) and suffix != path.suffix.lower():
      return f"; it looks like {_FORMAT_NAMES[suffix]}: rename it to {suffix}"
  return ""


@contextlib.contextmanager
def _reading(path: pathlib.Path):
  """Raises whatever reading `path` fails with as one AnnotationError naming the file.

  Readers of damaged files raise anything (BadZipFile, XLRDError, KeyError, EOFError, zlib.error,
  struct.error ...), so every exception but our own AnnotationError is translated here. openpyxl's
  warnings about features it drops (styles, validation) are silenced: only values are read.
  """
  expected = _format_name(path)
  try:
    with warnings.catch_warnings():
      warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl")
      yield
  except AnnotationError:
    raise
  except OSError as error:  # no permission, a folder, a vanished or unreadable file
    reason = error.strerror or str(error)
    raise AnnotationError(f"{path}: cannot be read ({reason}); expected {expected}") from error
  except Exception as error:  # pylint: disable=broad-except
    if _size(path) == 0:
      raise AnnotationError(f"{path}: is empty (0 bytes); expected {expected}") from error
    detail = " ".join(f"{type(error).__name__}: {error}".split())[:200]
    raise AnnotationError(f"{path}: expected {expected}, but it is damaged, truncated or of "
                          f"another format{_looks_like(path)} ({detail})") from error


def _size(path: pathlib.Path) -> int | None:
  try:
    return path.stat().st_size
  except OSError:
    return None


def _pick_sheet(names: Sequence[str], sheet: str | int, path: pathlib.Path) -> int:
  """Index of `sheet` (a name or an index) among the workbook's sheet `names`."""
  if isinstance(sheet, int):
    if 0 <= sheet < len(names):
      return sheet
    raise AnnotationError(f"{path}: has {len(names)} sheet(s) {list(names)}; expected a sheet "
                          f"number {sheet}")
  if sheet in names:
    return list(names).index(sheet)
  raise AnnotationError(f"{path}: no sheet {sheet!r} (sheets: {list(names)})")


def sheet_names(path: str | pathlib.Path) -> list[str]:
  """The workbook's sheet names; a CSV file is one sheet named after the file."""
  path = require_file(path, f"an annotation sheet ({SHEET_FORMATS})")
  suffix = path.suffix.lower()
  if suffix == ".xlsx":
    import openpyxl
    with _reading(path):
      book = openpyxl.load_workbook(path, read_only=True, data_only=True)
      try:
        return list(book.sheetnames)
      finally:
        book.close()
  if suffix == ".xls":
    with _reading(path):
      return _open_xls(path, on_demand=True).sheet_names()
  return [path.stem]


def read_cells(path: str | pathlib.Path, sheet: str | int = 0) -> tuple[str, list[list[Any]]]:
  """(sheet name, all rows as lists of values) of one sheet; csv files have one sheet."""
  path = require_file(path, f"an annotation sheet ({SHEET_FORMATS})")
  suffix = path.suffix.lower()
  readers = {".xlsx": _read_xlsx, ".xls": _read_xls, ".csv": _read_csv, ".txt": _read_csv}
  if suffix not in readers:
    raise AnnotationError(f"{path}: unsupported annotation format {suffix!r} "
                          f"(expected {SHEET_FORMATS}){_looks_like(path)}")
  with _reading(path):
    return readers[suffix](path, sheet)


def _read_xlsx(path, sheet):
  import openpyxl
  book = openpyxl.load_workbook(path, read_only=True, data_only=True)
  try:
    ws = book.worksheets[_pick_sheet(book.sheetnames, sheet, path)]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    return ws.title, rows
  finally:
    book.close()


def _open_xls(path, on_demand=False):
  import xlrd
  # xlrd prints its own warnings about damaged files to stdout unless given another log file.
  return xlrd.open_workbook(path, on_demand=on_demand, logfile=io.StringIO())


def _read_xls(path, sheet):
  import xlrd
  book = _open_xls(path)
  ws = book.sheet_by_index(_pick_sheet(book.sheet_names(), sheet, path))
  rows = []
  for r in range(ws.nrows):
    values = []
    for cell in ws.row(r):
      value = cell.value
      if cell.ctype == xlrd.XL_CELL_EMPTY or cell.ctype == xlrd.XL_CELL_BLANK:
        value = None
      elif cell.ctype == xlrd.XL_CELL_NUMBER and float(value).is_integer():
        value = int(value)
      values.append(value)
    rows.append(values)
  return ws.name, rows


def _read_csv(path, sheet=0):
  del sheet  # a CSV file is one sheet
  raw = path.read_bytes()
  if b"\x00" in raw:  # text never holds NUL bytes: a binary file named .csv
    raise AnnotationError(f"{path}: holds binary data, not text; expected a CSV export of the "
                          f"sheet{_looks_like(path)}")
  for encoding in ("utf-8-sig", "gb18030", "latin-1"):  # Chinese sheets are often GBK exports
    try:
      text = raw.decode(encoding)
      break
    except UnicodeDecodeError:
      continue
  rows = []
  for fields in csv.reader(text.splitlines()):
    rows.append([_csv_value(f) for f in fields])
  return path.stem, rows


def _csv_value(field: str):
  field = field.strip()
  if field == "":
    return None
  if re.fullmatch(r"-?\d+", field) and not (len(field) > 1 and field.startswith("0")):
    return int(field)  # keep '006'-style ids as text, like the workbook does
  return field


def read_table(path: str | pathlib.Path, sheet: str | int = 0, header_row: int | None = None,
               header_contains: Sequence[str] = ()) -> Table:
  """One sheet as a Table; blank rows are dropped, trailing empty cells padded with None.

  header_row: 1-based row of the header; None finds the first row holding every name of
  `header_contains` (e.g. SAMM's header under a 13-row preamble). With neither, row 1.
  """
  path = pathlib.Path(path)
  name, cells = read_cells(path, sheet)
  if header_row is None:
    header_row = 1
    if header_contains:
      wanted = {_key(n) for n in header_contains}
      for number, row in enumerate(cells, start=1):
        if wanted <= {_key(v) for v in row if v is not None}:
          header_row = number
          break
      else:
        raise AnnotationError(f"{path}: sheet {name!r} has no header row with columns "
                              f"{list(header_contains)}")
  if header_row > len(cells):
    raise AnnotationError(f"{path}: sheet {name!r} has {len(cells)} rows, header expected on "
                          f"row {header_row}")
  header = [_text(v) for v in cells[header_row - 1]]
  width = len(header)
  rows = []
  for number, row in enumerate(cells[header_row:], start=header_row + 1):
    if all(v is None or _text(v) == "" for v in row):
      continue
    rows.append((number, list(row) + [None] * (width - len(row))))
  return Table(path, name, header, rows)


def headerless_table(path: str | pathlib.Path, sheet: str | int = 0) -> Table:
  """A sheet without a header row (CAS(ME)^2's main sheet): columns are named '0', '1', ..."""
  path = pathlib.Path(path)
  name, cells = read_cells(path, sheet)
  width = max((len(r) for r in cells), default=0)
  rows = [(n, list(r) + [None] * (width - len(r))) for n, r in enumerate(cells, start=1)
          if not all(v is None or _text(v) == "" for v in r)]
  return Table(path, name, [str(i) for i in range(width)], rows)


def _text(value) -> str:
  if value is None:
    return ""
  if isinstance(value, float) and value.is_integer():
    value = int(value)
  return str(value).strip()


def text(value) -> str:
  """A cell as stripped text ('' for empty; 12.0 -> '12')."""
  return _text(value)


def integer(value, table: Table, row: int, column: str, *, missing: int | None = None) -> int:
  """A cell as int; `missing` for empty/non-numeric cells when given, else AnnotationError."""
  text_value = _text(value)
  try:
    number = float(text_value)
    if number.is_integer():
      return int(number)
  except ValueError:
    pass
  if missing is not None:
    return missing
  raise AnnotationError(f"{table.where(row, column)}: expected a whole number, got {value!r}")
