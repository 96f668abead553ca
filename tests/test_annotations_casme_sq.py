"""CAS(ME)^2 coding sheet parser on the real CSV export (tests/data/annotations/casme_sq) and on
workbooks written from it."""

from __future__ import annotations

import collections
import csv
import json
import pathlib

import openpyxl
import pytest

from mejax.annotations import casme_sq
from mejax.annotations import records
from mejax.annotations.__main__ import main as cli
from mejax.annotations.sheets import AnnotationError

CSV = (pathlib.Path(__file__).parent / "data" / "annotations" / "casme_sq"
       / "CAS(ME)^2code_final(Updated).csv")
MICRO_PARTICIPANTS = {1, 2, 3, 7, 8, 9, 11, 12, 13, 14, 15, 18, 20, 21}


def _rows() -> list[list[str]]:
  with CSV.open(newline="", encoding="utf-8-sig") as f:
    return list(csv.reader(f))


def _without_source(parsed: records.Parsed) -> list[dict]:
  return [{k: v for k, v in s.as_dict().items() if k != "source"} for s in parsed.samples]


def _workbook(path: pathlib.Path, rows, *, rule2_as_numbers: bool = True) -> pathlib.Path:
  book = openpyxl.Workbook()
  main = book.active
  main.title = "CASFEcode_final"
  for row in rows:
    main.append([int(v) if v.lstrip("-").isdigit() else v for v in row[:9]])
  rule1 = book.create_sheet("naming rule1")
  for participant, folder in casme_sq.PARTICIPANT_FOLDERS.items():
    rule1.append([int(folder[1:]), folder, participant])
  rule2 = book.create_sheet("naming rule2")
  for code, name in casme_sq.VIDEO_CODES.items():
    rule2.append([int(code) if rule2_as_numbers else code, name])
  book.save(path)
  return path


def test_counts_of_the_real_sheet():
  every = casme_sq.parse(CSV, expression_type="all")
  micro = casme_sq.parse(CSV)  # micro is the default
  macro = casme_sq.parse(CSV, expression_type="macro")
  assert (len(every.samples), len(micro.samples), len(macro.samples)) == (357, 57, 300)
  assert not every.skipped
  assert len({s.subject for s in every.samples}) == 22
  assert collections.Counter(s.emotion for s in every.samples) == {
      "negative": 126, "positive": 124, "surprise": 25, "others": 82}
  assert collections.Counter(s.emotion for s in micro.samples) == {
      "negative": 21, "positive": 8, "surprise": 9, "others": 19}
  folders = {casme_sq.PARTICIPANT_FOLDERS[p] for p in MICRO_PARTICIPANTS}
  assert {s.subject for s in micro.samples} == folders
  assert all(s.three_class == ("" if s.emotion == "others" else s.emotion)
             for s in every.samples)
  assert all(s.fps == 30.0 and s.dataset == "casme_sq" for s in every.samples)


def test_records_of_named_rows():
  samples = {s.sample_id: s for s in casme_sq.parse(CSV, expression_type="all").samples}
  first = samples["s15/anger1_1"]
  assert (first.subject, first.clip, first.emotion, first.action_units) == (
      "s15", "s15/anger1_1", "negative", "4+10+14+15")
  assert (first.onset, first.apex, first.offset) == (557, 572, 608)
  assert first.source == "CAS(ME)^2code_final(Updated).csv row 1"
  assert samples["s15/anger2_1"].offset == -1        # offset 0 = not annotated
  assert samples["s15/anger2_1"].action_units == ""  # 'NULL'
  assert samples["s34/anger1_1"].apex == -1          # apex 0


def test_default_folder_mapping_matches_the_exports_video_column():
  # The export's last column is the raw video folder ('s15/15_0401girlcrashing'): it checks the
  # documented participant -> folder and video code -> name mappings row by row.
  samples = casme_sq.parse(CSV, expression_type="all").samples
  for sample, row in zip(samples, _rows(), strict=True):
    folder, video = row[10].split("/")
    assert sample.subject == folder
    expression_id = sample.sample_id.split("/")[1]
    assert casme_sq.VIDEO_CODES[video.split("_")[1][:4]] == expression_id.rsplit("_", 1)[0]
    assert casme_sq.video_code(sample) == video.split("_")[1][:4]


def test_offset_zero_rows_are_skipped_by_validate():
  parsed = casme_sq.parse(CSV, expression_type="all")
  checked = records.validate(parsed.samples)
  not_annotated = [s for s in checked.skipped if "offset not annotated" in s.reason]
  assert len(not_annotated) == 44
  assert all("offset -1)" in s.reason for s in not_annotated)
  macro_ids = {s.sample_id for s in casme_sq.parse(CSV, expression_type="macro").samples}
  assert {s.sample_id for s in not_annotated} <= macro_ids
  reasons = {s.sample_id: s.reason for s in checked.skipped}
  # The other rows kept out: three apex typos (apex > offset) and s34/anger1_1 (apex 0).
  assert set(reasons) - {s.sample_id for s in not_annotated} == {
      "s27/disgust1_5", "s31/happy2_1", "s32/anger1_12", "s34/anger1_1"}
  assert "apex 1230 outside onset..offset 1221..1224" in reasons["s27/disgust1_5"]
  assert len(checked.samples) == 357 - 48
  # midpoint repairs the missing/outside apex rows, never a missing offset
  repaired = records.validate(parsed.samples, "midpoint")
  assert len(repaired.skipped) == 44
  assert {s.sample_id for s in repaired.samples if s.repaired} == {
      "s27/disgust1_5", "s31/happy2_1", "s32/anger1_12", "s34/anger1_1"}


def test_micro_rows_are_all_valid():
  checked = records.validate(casme_sq.parse(CSV).samples)
  assert len(checked.samples) == 57 and not checked.skipped


def test_workbook_parses_like_the_csv(tmp_path):
  rows = _rows()
  book = _workbook(tmp_path / "CAS(ME)^2code_final.xlsx", rows)
  for kind in casme_sq.EXPRESSION_TYPES:
    from_book = casme_sq.parse(book, expression_type=kind)
    assert _without_source(from_book) == _without_source(
        casme_sq.parse(CSV, expression_type=kind))
  assert from_book.samples[0].source == "CAS(ME)^2code_final.xlsx row 1"


def test_workbook_naming_rules_are_preferred(tmp_path):
  # A workbook whose naming rule1 maps participant 1 to s99 yields s99 samples.
  book = _workbook(tmp_path / "book.xlsx", _rows())
  workbook = openpyxl.load_workbook(book)
  sheet = workbook["naming rule1"]
  sheet.insert_rows(1)
  sheet["A1"], sheet["B1"], sheet["C1"] = "folder", "subject", "participant"  # a header row
  sheet["B2"] = "s99"
  workbook.save(book)
  subjects = {s.subject for s in casme_sq.parse(book, expression_type="all").samples}
  assert "s99" in subjects and "s15" not in subjects


def test_header_line_is_tolerated(tmp_path):
  copy = tmp_path / "with_header.csv"
  copy.write_text("participant,expression,onset,apex,offset,AUs,emotion,type,self-report,d,v\n"
                  + CSV.read_text(encoding="utf-8-sig"))
  assert _without_source(casme_sq.parse(copy, expression_type="all")) == _without_source(
      casme_sq.parse(CSV, expression_type="all"))


def test_shifted_columns_raise_with_row_and_column(tmp_path):
  rows = _rows()
  shifted = [row[:2] + [""] + row[2:] for row in rows]  # a blank column inserted after the id
  path = tmp_path / "shifted.csv"
  path.write_text("\n".join(",".join(row) for row in shifted) + "\n")
  with pytest.raises(AnnotationError,
                     match=r"shifted\.csv .*row 1, column '8 \(expression type\)'.*shifted"):
    casme_sq.parse(path, expression_type="all")
  dropped = [row[1:] for row in rows]  # participant column lost
  path = tmp_path / "dropped.csv"
  path.write_text("\n".join(",".join(row) for row in dropped) + "\n")
  with pytest.raises(AnnotationError, match=r"dropped\.csv .*row 1, column '1 \(participant\)'"):
    casme_sq.parse(path, expression_type="all")


def test_bad_cells_name_file_row_and_column(tmp_path):
  rows = _rows()
  cases = {
      (4, 0): ("23", "participant"),        # no such participant
      (5, 1): ("angry_1", "expression id"),  # unknown video
      (6, 3): ("n/a", "apex"),
      (7, 7): ("meso-expression", "expression type"),
      (8, 6): ("joy", "estimated emotion"),
  }
  for (index, column), (value, name) in cases.items():
    bad = [list(r) for r in rows]
    bad[index][column] = value
    path = tmp_path / f"bad{index}.csv"
    path.write_text("\n".join(",".join(row) for row in bad) + "\n")
    where = rf"bad{index}\.csv .*row {index + 1}, column '{column + 1} \({name}\)'"
    with pytest.raises(AnnotationError, match=where):
      casme_sq.parse(path, expression_type="all")


def test_missing_file_and_bad_arguments(tmp_path):
  with pytest.raises(FileNotFoundError, match="nothing.xlsx"):
    casme_sq.parse(tmp_path / "nothing.xlsx")
  with pytest.raises(ValueError, match="expression_type"):
    casme_sq.parse(CSV, expression_type="meso")
  with pytest.raises(ValueError, match="repair"):
    casme_sq.parse(CSV, repair="guess")


def test_cli_json(capsys):
  assert cli(["casme_sq", str(CSV), "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["summary"]["usable"] == 57 and out["summary"]["subjects"] == 14
  assert out["summary"]["emotions"] == {"negative": 21, "others": 19, "surprise": 9,
                                        "positive": 8}
  assert out["summary"]["three_class"] == {"(none)": 19, "negative": 21, "positive": 8,
                                           "surprise": 9}


def test_cli_error_names_the_file(tmp_path, capsys):
  assert cli(["casme_sq", str(tmp_path / "absent.csv")]) == 2
  assert "absent.csv" in capsys.readouterr().err
