"""Annotation spreadsheets (xlsx, xls, csv) as rows of Python values, columns found by header name.

Formula cells are read as the values the workbook cached (openpyxl `data_only=True`; xlrd and csv
only ever see values). Columns are located by their header text, never by position: user-cleaned
copies of the sheets drop blank columns or reorder them.
"""

from __future__ import annotations

import csv
import dataclasses
import pathlib
import re
from typing import Any, Sequence


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


def sheet_names(path: str | pathlib.Path) -> list[str]:
  path = pathlib.Path(path)
  suffix = path.suffix.lower()
  if suffix == ".xlsx":
    import openpyxl
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
      return list(book.sheetnames)
    finally:
      book.close()
  if suffix == ".xls":
    import xlrd
    return xlrd.open_workbook(path, on_demand=True).sheet_names()
  return [path.stem]


def read_cells(path: str | pathlib.Path, sheet: str | int = 0) -> tuple[str, list[list[Any]]]:
  """(sheet name, all rows as lists of values) of one sheet; csv files have one sheet."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"Annotation file not found: {path}")
  suffix = path.suffix.lower()
  try:
    if suffix == ".xlsx":
      return _read_xlsx(path, sheet)
    if suffix == ".xls":
      return _read_xls(path, sheet)
    if suffix in (".csv", ".txt"):
      return path.stem, _read_csv(path)
  except AnnotationError:
    raise
  except (KeyError, IndexError) as e:
    raise AnnotationError(f"{path}: no sheet {sheet!r} (sheets: {sheet_names(path)})") from e
  except Exception as e:  # corrupt or truncated workbook
    raise AnnotationError(f"{path}: cannot read as {suffix} ({type(e).__name__}: {e})") from e
  raise AnnotationError(f"{path}: unsupported annotation format {suffix!r} "
                        "(expected .xlsx, .xls or .csv)")


def _read_xlsx(path, sheet):
  import openpyxl
  book = openpyxl.load_workbook(path, read_only=True, data_only=True)
  try:
    ws = book.worksheets[sheet] if isinstance(sheet, int) else book[sheet]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    return ws.title, rows
  finally:
    book.close()


def _read_xls(path, sheet):
  import xlrd
  book = xlrd.open_workbook(path)
  ws = book.sheet_by_index(sheet) if isinstance(sheet, int) else book.sheet_by_name(sheet)
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


def _read_csv(path):
  raw = path.read_bytes()
  for encoding in ("utf-8-sig", "gb18030", "latin-1"):  # Chinese sheets are often GBK exports
    try:
      text = raw.decode(encoding)
      break
    except UnicodeDecodeError:
      continue
  rows = []
  for fields in csv.reader(text.splitlines()):
    rows.append([_csv_value(f) for f in fields])
  return rows


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
