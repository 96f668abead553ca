"""Annotation parsers of CASME II (real coding sheets) and CASME v1 (dummy .xls sheets)."""

from __future__ import annotations

import collections
import dataclasses
import json
import pathlib
import shutil

import openpyxl
import pytest

from mejax.annotations import __main__ as cli
from mejax.annotations import casme
from mejax.annotations import casme2
from mejax.annotations import records
from mejax.annotations.sheets import AnnotationError

REPO = pathlib.Path(__file__).resolve().parents[1]
CASME2_DIR = REPO / "tests" / "data" / "annotations" / "casme2"
CODING_2014 = CASME2_DIR / "CASME2-coding-20140508.xlsx"
OBJECTIVE = CASME2_DIR / "CASME2-ObjectiveClasses.xlsx"
CASME_DUMMY = REPO / "tfds_builders" / "casme" / "dummy_data"
SECTION_A = CASME_DUMMY / "CASME" / "RAW" / "CASME_A" / "Section A" / "Section A.xls"
SECTION_B = CASME_DUMMY / "CASME" / "RAW" / "CASME_B" / "Section B" / "Section B.xls"

EMOTIONS_2014 = {"others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25,
                 "sadness": 7, "fear": 2}
QUESTION_MARK_AUS = ["sub05/EP05_03", "sub05/EP07_01", "sub05/EP13_04f", "sub19/EP11_01f",
                     "sub26/EP13_01"]


def _by_id(parsed: records.Parsed) -> dict[str, records.Sample]:
  return {s.sample_id: s for s in parsed.samples}


def _sheet_rows(path: pathlib.Path, sheet: str = "Sheet1") -> list[tuple]:
  book = openpyxl.load_workbook(path, data_only=True)
  try:
    return [tuple(r) for r in book[sheet].iter_rows(values_only=True)]
  finally:
    book.close()


def _write(path: pathlib.Path, rows, sheet: str = "Sheet1") -> pathlib.Path:
  book = openpyxl.Workbook()
  book.active.title = sheet
  for row in rows:
    book.active.append(list(row))
  book.save(path)
  return path


# ---- CASME II: the real 2014 coding sheet -----------------------------------------------------

@pytest.fixture(scope="module")
def parsed_2014() -> records.Parsed:
  return casme2.parse(CODING_2014)


def test_casme2_counts(parsed_2014):
  samples = parsed_2014.samples
  assert len(samples) == 255 and parsed_2014.skipped == []
  assert sorted({s.subject for s in samples}) == [f"sub{i:02d}" for i in range(1, 27)]
  assert collections.Counter(s.emotion for s in samples) == EMOTIONS_2014
  assert {s.fps for s in samples} == {200.0} and {s.dataset for s in samples} == {"casme2"}
  first = samples[0]
  assert (first.sample_id, first.clip, first.onset, first.apex, first.offset) == (
      "sub01/EP02_01f", "sub01/EP02_01f", 46, 59, 86)
  assert first.source == "CASME2-coding-20140508.xlsx row 2"
  assert all(s.objective_class == 0 for s in samples)  # no column, no objective file given


def test_casme2_three_class_matches_megc2019(parsed_2014):
  counts = collections.Counter(s.three_class for s in parsed_2014.samples)
  # CASME II negative = disgust + repression; fear, sadness and others have no 3-class label.
  assert counts == {"negative": 63 + 27, "positive": 32, "surprise": 25, "": 99 + 7 + 2}
  usable = records.validate(parsed_2014.samples).samples
  megc = collections.Counter(s.three_class for s in usable
                             if s.three_class and s.sample_id != "sub05/EP09_05f")
  assert megc == {"negative": 88, "positive": 32, "surprise": 25}  # the composite's 145 rows


def test_casme2_slash_apex_is_not_annotated_and_skipped(parsed_2014):
  slash = _by_id(parsed_2014)["sub04/EP12_01f"]
  assert (slash.onset, slash.apex, slash.offset) == (261, -1, 321)
  assert slash.source == "CASME2-coding-20140508.xlsx row 31"
  checked = records.validate(parsed_2014.samples)
  assert len(checked.samples) == 254
  [skip] = checked.skipped
  assert (skip.sample_id, skip.file) == ("sub04/EP12_01f", "CASME2-coding-20140508.xlsx row 31")
  assert skip.reason.startswith("apex not annotated")
  repaired = _by_id(records.validate(parsed_2014.samples, "midpoint"))["sub04/EP12_01f"]
  assert repaired.apex == (261 + 321) // 2 and "apex not annotated" in repaired.repaired


def test_casme2_onset_equal_to_apex_is_kept(parsed_2014):
  kept = _by_id(records.validate(parsed_2014.samples))["sub05/EP09_05f"]
  assert (kept.onset, kept.apex, kept.offset) == (69, 69, 123)


def test_casme2_action_units_as_text(parsed_2014):
  by_id = _by_id(parsed_2014)
  assert sorted(i for i, s in by_id.items() if s.action_units == "?") == QUESTION_MARK_AUS
  assert by_id["sub01/EP02_01f"].action_units == "12"       # an int cell
  assert by_id["sub04/EP12_01f"].action_units == "4+7"
  assert by_id["sub05/EP09_05f"].action_units == "R2+15"


def test_casme2_objective_classes_joined():
  parsed = casme2.parse(CODING_2014, objective_classes=OBJECTIVE)
  by_id = _by_id(parsed)
  # Check against the file itself, read directly.
  expected = {f"sub{row[0]}/{row[1]}": row[2] for row in _sheet_rows(OBJECTIVE)[1:]}
  assert len(expected) == 255
  for sample_id in ["sub01/EP02_01f", "sub01/EP03_02", "sub04/EP12_01f", "sub19/EP11_01f",
                    "sub26/EP13_01"]:
    assert by_id[sample_id].objective_class == expected[sample_id], sample_id
  assert {i: s.objective_class for i, s in by_id.items()} == expected
  assert by_id["sub01/EP02_01f"].objective_class == 1  # happiness -> class I
  # The mapping is equally accepted already parsed, and Sheet2's scratch rows are not read.
  mapping = casme2.parse_objective_classes(OBJECTIVE)
  assert len(mapping) == 255 and mapping[("sub01", "EP02_01f")] == 1
  assert _by_id(casme2.parse(CODING_2014, objective_classes=mapping)) == by_id


def test_casme2_folder_finds_sheet_and_objective_classes():
  parsed = casme2.parse(CASME2_DIR)
  assert len(parsed.samples) == 255
  assert all(1 <= s.objective_class <= 7 for s in parsed.samples)


def test_casme2_own_objective_column_wins(tmp_path):
  rows = _sheet_rows(CODING_2014)
  # A 2019-style sheet: column J "Objective Classes"; every class set to 5 to tell them apart.
  sheet = _write(tmp_path / "CASME2-coding-20190701.xlsx",
                 [rows[0] + ("Objective Classes",)] + [r + (5,) for r in rows[1:]])
  parsed = casme2.parse(sheet, objective_classes=OBJECTIVE)
  assert {s.objective_class for s in parsed.samples} == {5}


def test_casme2_columns_found_by_name(tmp_path, parsed_2014):
  rows = _sheet_rows(CODING_2014)
  header = list(rows[0])
  keep = [header.index(n) for n in ("Estimated Emotion", "Action Units", "OffsetFrame",
                                    "ApexFrame", "OnsetFrame", "Filename", "Subject")]
  cleaned = [[row[i] for i in keep] for row in rows]  # blank columns dropped, order reversed
  copy = _write(tmp_path / CODING_2014.name, cleaned)
  assert casme2.parse(copy).samples == parsed_2014.samples


def test_casme2_find_annotation(tmp_path):
  (tmp_path / "labels").mkdir()
  shutil.copy(CODING_2014, tmp_path / "CASME2-coding-20140508.xlsx")
  shutil.copy(CODING_2014, tmp_path / "labels" / "CASME2-coding-20190701.xlsx")
  (tmp_path / "~$CASME2-coding-20990101.xlsx").write_bytes(b"excel lock file")
  shutil.copy(OBJECTIVE, tmp_path / "labels" / OBJECTIVE.name)
  coding, objective = casme2.find_annotation(tmp_path)
  assert coding == tmp_path / "labels" / "CASME2-coding-20190701.xlsx"  # newest date wins
  assert objective == tmp_path / "labels" / OBJECTIVE.name


def test_casme2_find_annotation_error_lists_what_was_searched(tmp_path):
  with pytest.raises(FileNotFoundError) as error:
    casme2.find_annotation(tmp_path)
  assert str(tmp_path / "CASME2-coding*.xls*") in str(error.value)
  assert str(tmp_path / "*" / "CASME2-coding*.xls*") in str(error.value)


def test_casme2_cli_json(capsys):
  assert cli.main(["casme2", str(CODING_2014), "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  # All 255 rows read; the build's timing check leaves out the apex '/' row.
  assert out["summary"]["rows"] == 255 and out["summary"]["usable"] == 254
  assert out["summary"]["skipped"] == 1
  assert out["skipped"][0]["sample_id"] == "sub04/EP12_01f"
  assert "apex not annotated" in out["skipped"][0]["reason"]
  assert out["summary"]["subjects"] == 26
  assert out["summary"]["emotions"] == EMOTIONS_2014
  assert out["summary"]["three_class"] == {"(none)": 108, "negative": 90, "positive": 32,
                                           "surprise": 25}
  assert "sub04/EP12_01f" not in {s["sample_id"] for s in out["samples"]}
  assert cli.main(["casme2", str(CODING_2014), "--json", "--repair", "midpoint"]) == 0
  repaired = json.loads(capsys.readouterr().out)
  assert repaired["summary"]["usable"] == 255 and repaired["summary"]["repaired"] == 1
  slash = [s for s in repaired["samples"] if s["sample_id"] == "sub04/EP12_01f"]
  assert slash[0]["apex"] == 291 and "midpoint" in slash[0]["repaired"]


def test_casme2_cli_missing_file(capsys, tmp_path):
  assert cli.main(["casme2", str(tmp_path / "CASME2-coding-x.xlsx")]) == 2
  assert "CASME2-coding-x.xlsx" in capsys.readouterr().err


# ---- CASME II: bad input ----------------------------------------------------------------------

def test_casme2_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="CASME2-coding-20140508.xlsx"):
    casme2.parse(tmp_path / "CASME2-coding-20140508.xlsx")


def test_casme2_bad_subject_cell_names_file_row_column(tmp_path):
  rows = _sheet_rows(CODING_2014)
  rows[3] = ("Jim",) + rows[3][1:]
  copy = _write(tmp_path / "coding.xlsx", rows)
  with pytest.raises(AnnotationError, match=r"coding.xlsx \[Sheet1\] row 4, column 'Subject'"):
    casme2.parse(copy)


def test_casme2_bad_objective_class_names_the_cell(tmp_path):
  rows = _sheet_rows(OBJECTIVE)
  rows[2] = rows[2][:2] + (9,)
  copy = _write(tmp_path / OBJECTIVE.name, rows)
  with pytest.raises(AnnotationError, match=r"row 3, column 'Objective Class'.*1..7"):
    casme2.parse_objective_classes(copy)


def test_casme2_missing_column_is_named(tmp_path):
  rows = [r[:8] for r in _sheet_rows(CODING_2014)]  # no Estimated Emotion
  with pytest.raises(AnnotationError, match="Estimated Emotion"):
    casme2.parse(_write(tmp_path / "coding.xlsx", rows))


def test_casme2_row_without_filename_is_a_recorded_skip(tmp_path):
  rows = _sheet_rows(CODING_2014)
  rows[5] = (rows[5][0], None) + rows[5][2:]
  parsed = casme2.parse(_write(tmp_path / "coding.xlsx", rows))
  assert len(parsed.samples) == 254
  [skip] = parsed.skipped
  assert skip.file == "coding.xlsx row 6" and "no Filename" in skip.reason


def test_casme2_unknown_repair_policy():
  with pytest.raises(ValueError, match="repair"):
    casme2.parse(CODING_2014, repair="guess")


# ---- CASME (v1): the dummy .xls sheets --------------------------------------------------------

def test_casme_section_sheet():
  parsed = casme.parse(SECTION_A)
  assert parsed.skipped == []
  by_id = _by_id(parsed)
  assert sorted(by_id) == ["sub01/EP01_5", "sub01/EP01_6", "sub02/EP10"]
  first = by_id["sub01/EP01_5"]
  assert first.subject == "sub01" and first.clip == "Section A/sub01/EP01_5"
  assert (first.onset, first.apex, first.offset) == (2, 4, 7)  # ApexF1, not ApexF2
  assert first.fps == 60.0 and first.source == "Section A.xls row 2"
  assert first.three_class == "positive" and first.action_units == "12"
  assert by_id["sub01/EP01_6"].emotion == "disgust"  # 'Disgust' in the sheet
  assert by_id["sub02/EP10"].emotion == "tense" and by_id["sub02/EP10"].three_class == ""
  assert by_id["sub02/EP10"].action_units == "4"  # a number cell


def test_casme_root_folder_parses_both_sections():
  parsed = casme.parse(CASME_DUMMY)
  by_id = _by_id(parsed)
  assert len(by_id) == 5 and {s.subject for s in parsed.samples} == {"sub01", "sub02", "sub08"}
  assert by_id["sub08/EP02_1"].emotion == "contempt"  # spelled 'comtempt' in the sheet
  assert by_id["sub08/EP02_1"].clip == "Section B/sub08/EP02_1"
  assert by_id["sub08/EP03"].apex == -1
  [skip] = records.validate(parsed.samples).skipped
  assert (skip.sample_id, skip.file) == ("sub08/EP03", "Section B.xls row 3")
  assert skip.reason.startswith("apex not annotated")


def test_casme_header_spellings_and_order(tmp_path):
  import xlrd
  sheet = xlrd.open_workbook(SECTION_A).sheet_by_name("Sheet1")
  rows = [sheet.row_values(r) for r in range(sheet.nrows)]
  header = rows[0]
  names = {"Subject": "Subject", "Filename": "Filename", "OnsetF": "Onset Frame",
           "ApexF1": "ApexF", "OffsetF": "Offset Frame", "AUs": "Action Units",
           "Emotion": "Estimated Emotion"}
  keep = [header.index(n) for n in reversed(list(names))]
  cleaned = [[names[header[i]] for i in keep]] + [[r[i] for i in keep] for r in rows[1:]]
  copy = _write(tmp_path / "Section A.xlsx", cleaned)
  original = casme.parse(SECTION_A).samples
  assert casme.parse(copy).samples == [
      dataclasses.replace(s, source=s.source.replace(".xls", ".xlsx")) for s in original]


def test_casme_cli_json(capsys):
  assert cli.main(["casme", str(CASME_DUMMY), "--json"]) == 0
  summary = json.loads(capsys.readouterr().out)["summary"]
  assert summary["rows"] == 5 and summary["subjects"] == 3
  assert summary["emotions"] == {"contempt": 1, "disgust": 1, "happiness": 1, "surprise": 1,
                                 "tense": 1}


def test_casme_find_sections(tmp_path):
  with pytest.raises(FileNotFoundError, match="Section A.xls"):
    casme.find_sections(tmp_path)
  shutil.copytree(CASME_DUMMY, tmp_path / "data")
  assert [p.name for p in casme.find_sections(tmp_path)] == ["Section A.xls", "Section B.xls"]
  # A sheet inside a subject folder is not looked for; a second copy elsewhere is ambiguous.
  clip_copy = tmp_path / "data" / "CASME" / "RAW" / "CASME_A" / "Section A" / "sub01" / "x.xls"
  shutil.copy(SECTION_A, clip_copy.with_name("Section A.xls"))
  assert len(casme.find_sections(tmp_path)) == 2
  shutil.copy(SECTION_A, tmp_path / "data" / "Section A.xls")
  with pytest.raises(AnnotationError, match="two sheets for Section A"):
    casme.find_sections(tmp_path)


def test_casme_missing_file_and_bad_cell(tmp_path):
  with pytest.raises(FileNotFoundError, match="Section C.xls"):
    casme.parse(tmp_path / "Section C.xls")
  bad = _write(tmp_path / "Section A.xlsx", [["Subject", "Filename", "OnsetF", "ApexF1",
                                              "OffsetF", "AUs", "Emotion"],
                                             ["one", "EP01_5", 2, 4, 7, "12", "happiness"]])
  with pytest.raises(AnnotationError, match=r"Section A.xlsx \[Sheet1\] row 2, column 'Subject'"):
    casme.parse(bad)
