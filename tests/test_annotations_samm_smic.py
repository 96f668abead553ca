"""Annotation parsers of SAMM, SMIC and SMIC-E on the real sheets (tests/data/annotations)."""

from __future__ import annotations

import collections
import csv
import json
import logging
import pathlib

import openpyxl
import pytest

from mejax.annotations import records
from mejax.annotations import samm
from mejax.annotations import sheets
from mejax.annotations import smic
from mejax.annotations.__main__ import main as cli

DATA = pathlib.Path(__file__).parent / "data" / "annotations"
SAMM_SHEET = DATA / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx"
SMIC_E_SHEET = DATA / "smic" / "SMIC-HS-E_annotation.xlsx"
MEGC_GT = DATA / "megc2019" / "combined_3class_gt.csv"
SMIC_DUMMY = pathlib.Path(__file__).parent.parent / "tfds_builders" / "smic" / "dummy_data"

SAMM_EMOTIONS = {"anger": 57, "other": 26, "happiness": 26, "surprise": 15, "contempt": 12,
                 "disgust": 9, "fear": 8, "sadness": 6}


def _by_id(parsed: records.Parsed) -> dict[str, records.Sample]:
  return {s.sample_id: s for s in parsed.samples}


def _without_source(parsed: records.Parsed) -> list[dict]:
  out = []
  for sample in parsed.samples:
    row = sample.as_dict()
    row.pop("source")
    out.append(row)
  return out


def _rows(path: pathlib.Path, sheet: str | int = 0) -> list[list]:
  book = openpyxl.load_workbook(path, data_only=True)
  ws = book.worksheets[sheet] if isinstance(sheet, int) else book[sheet]
  return [list(r) for r in ws.iter_rows(values_only=True)]


def _write(path: pathlib.Path, sheets_rows: dict[str, list[list]]) -> pathlib.Path:
  book = openpyxl.Workbook()
  book.remove(book.active)
  for name, rows in sheets_rows.items():
    ws = book.create_sheet(name)
    for row in rows:
      ws.append(row)
  book.save(path)
  return path


# ---- SAMM ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def samm_parsed():
  return samm.parse(SAMM_SHEET)


def test_samm_counts(samm_parsed):
  samples = samm_parsed.samples
  assert len(samples) == 159 and samm_parsed.skipped == []
  assert len({s.subject for s in samples}) == 29
  subjects = sorted({s.subject for s in samples})
  assert subjects[0] == "006" and subjects[-1] == "037"
  assert not {"008", "027", "029"} & set(subjects)
  assert dict(collections.Counter(s.emotion for s in samples)) == SAMM_EMOTIONS
  three = collections.Counter(s.three_class for s in samples)
  # MEGC2019's SAMM part: every non-Other row, the two apex-typo rows included.
  assert three == {"negative": 92, "positive": 26, "surprise": 15, "": 26}
  assert {s.fps for s in samples} == {200.0}
  assert {s.objective_class for s in samples} == set(range(1, 8))
  assert len({s.sample_id for s in samples}) == 159


def test_samm_first_row(samm_parsed):
  first = samm_parsed.samples[0]
  assert first == records.Sample(
      dataset="samm", sample_id="006/006_1_2", subject="006", clip="006/006_1_2",
      emotion="anger", three_class="negative", action_units="4+7", objective_class=3, fps=200.0,
      onset=5562, apex=5588, offset=5632, source="SAMM_Micro_FACS_Codes_v2.xlsx row 15")


def test_samm_action_units_kept_as_coded(samm_parsed):
  by_id = _by_id(samm_parsed)
  assert by_id["033/033_1_4"].action_units == "12+15"     # '12+15 ' in the sheet
  assert by_id["006/006_1_3"].action_units == "4"         # an int cell
  units = {s.action_units for s in samm_parsed.samples}
  assert {"L12 or L14", "A/L12", "4A/B", "(R6 or R12) + R15", "R14+17+soft focus",
          "ref(5)+20C+25+26"} <= units


def test_samm_apex_typos_kept_then_validated(samm_parsed):
  by_id = _by_id(samm_parsed)
  assert (by_id["028/028_4_1"].onset, by_id["028/028_4_1"].apex,
          by_id["028/028_4_1"].offset) == (1071, 1143, 1134)
  assert (by_id["032/032_3_1"].onset, by_id["032/032_3_1"].apex,
          by_id["032/032_3_1"].offset) == (4896, 1930, 4970)
  checked = records.validate(samm_parsed.samples, "skip")
  assert len(checked.samples) == 157
  assert {s.sample_id: s.reason for s in checked.skipped} == {
      "028/028_4_1": "apex 1143 outside onset..offset 1071..1134 (repair policy 'midpoint' "
                     "would set apex = (onset + offset) // 2)",
      "032/032_3_1": "apex 1930 outside onset..offset 4896..4970 (repair policy 'midpoint' "
                     "would set apex = (onset + offset) // 2)"}
  assert {s.file for s in checked.skipped} == {"SAMM_Micro_FACS_Codes_v2.xlsx row 140",
                                               "SAMM_Micro_FACS_Codes_v2.xlsx row 147"}
  repaired = records.validate(samm_parsed.samples, "midpoint")
  assert len(repaired.samples) == 159 and not repaired.skipped
  notes = {s.sample_id: (s.apex, s.repaired) for s in repaired.samples if s.repaired}
  assert notes == {
      "028/028_4_1": (1102, "apex 1143 outside onset..offset 1071..1134; apex set to the "
                            "midpoint 1102"),
      "032/032_3_1": (4933, "apex 1930 outside onset..offset 4896..4970; apex set to the "
                            "midpoint 4933")}


def test_samm_header_by_name(tmp_path, samm_parsed):
  rows = _rows(SAMM_SHEET)
  header = rows[13]
  assert header[0] == "Subject"
  # Two preamble rows instead of 13, Duration/Micro/Notes dropped, columns reordered, Subject
  # as a number (the zeros of '006' lost), another sheet name.
  keep = ["Estimated Emotion", "Filename", "Offset Frame", "Apex Frame", "Onset Frame",
          "Action Units", "Objective Classes", "Subject"]
  order = [header.index(name) for name in keep]
  data = [[row[i] for i in order] for row in rows[14:]]
  for row in data:
    row[-1] = int(row[-1])
  copy = _write(tmp_path / "samm_copy.xlsx",
                {"Sheet1": [["SAMM notes"], [], keep] + data})
  parsed = samm.parse(copy)
  assert _without_source(parsed) == _without_source(samm_parsed)
  assert parsed.samples[0].source == "samm_copy.xlsx row 4"


def test_samm_folder_and_find_annotation(tmp_path):
  (tmp_path / "SAMM").mkdir()
  target = tmp_path / "SAMM" / "SAMM_Micro_FACS_Codes_v2.xlsx"
  target.write_bytes(SAMM_SHEET.read_bytes())
  (tmp_path / "SAMM" / "SAMM_Micro_FACS_Codes.xlsx").write_bytes(SAMM_SHEET.read_bytes())
  assert samm.find_annotation(tmp_path) == target
  assert samm.find_annotation(tmp_path / "SAMM") == target
  assert len(samm.parse(tmp_path).samples) == 159
  with pytest.raises(FileNotFoundError, match=r"samm: no SAMM coding sheet found"):
    samm.find_annotation(tmp_path / "SAMM" / "nothing_here")


def test_samm_release_root(tmp_path):
  (tmp_path / "SAMM_CROP" / "006" / "006_1_2").mkdir(parents=True)
  (tmp_path / "other").mkdir()
  assert samm.release_root(tmp_path) == tmp_path / "SAMM_CROP"
  assert samm.release_root(tmp_path / "SAMM_CROP") == tmp_path / "SAMM_CROP"
  with pytest.raises(FileNotFoundError, match=r"samm: no subject folders .*006"):
    samm.release_root(tmp_path / "other")


def test_samm_cli_json(capsys):
  assert cli(["samm", str(SAMM_SHEET), "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["dataset"] == "samm"
  summary = out["summary"]
  assert (summary["rows"], summary["usable"], summary["skipped"], summary["repaired"]) == (
      159, 157, 2, 0)
  assert summary["subjects"] == 29 and summary["emotions"] == SAMM_EMOTIONS
  assert summary["three_class"] == {"(none)": 26, "negative": 92, "positive": 26,
                                    "surprise": 15}
  assert out["samples"][0]["sample_id"] == "006/006_1_2"
  assert [s["sample_id"] for s in out["skipped"]] == ["028/028_4_1", "032/032_3_1"]
  assert cli(["samm", str(SAMM_SHEET), "--json", "--repair", "midpoint"]) == 0
  summary = json.loads(capsys.readouterr().out)["summary"]
  assert (summary["usable"], summary["skipped"], summary["repaired"]) == (159, 0, 2)


def test_samm_bad_input(tmp_path, capsys):
  missing = tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx"
  with pytest.raises(FileNotFoundError, match="SAMM_Micro_FACS_Codes_v2.xlsx"):
    samm.parse(missing)
  assert cli(["samm", str(missing)]) == 2
  assert "SAMM_Micro_FACS_Codes_v2.xlsx" in capsys.readouterr().err
  with pytest.raises(ValueError, match="repair policy"):
    samm.parse(SAMM_SHEET, repair="guess")

  rows = _rows(SAMM_SHEET)
  header = rows[13]
  bad = [list(r) for r in rows]
  bad[20][header.index("Objective Classes")] = "III"
  path = _write(tmp_path / "bad_class.xlsx", {"MICRO_ONLY": bad})
  with pytest.raises(sheets.AnnotationError,
                     match=r"bad_class.xlsx \[MICRO_ONLY\] row 21, column 'Objective Classes'"):
    samm.parse(path)

  bad = [list(r) for r in rows]
  bad[20][header.index("Subject")] = "six"
  path = _write(tmp_path / "bad_subject.xlsx", {"MICRO_ONLY": bad})
  with pytest.raises(sheets.AnnotationError, match=r"bad_subject.xlsx \[MICRO_ONLY\] row 21, "
                                                   r"column 'Subject'.*'six'"):
    samm.parse(path)

  no_header = _write(tmp_path / "no_header.xlsx", {"MICRO_ONLY": rows[:13] + rows[14:]})
  with pytest.raises(sheets.AnnotationError, match="no header row with columns"):
    samm.parse(no_header)

  # A row without Filename is recorded as a skip; a non-numeric apex becomes -1 (validate).
  odd = [list(r) for r in rows]
  odd[14][header.index("Filename")] = None
  odd[15][header.index("Apex Frame")] = "?"
  parsed = samm.parse(_write(tmp_path / "odd.xlsx", {"MICRO_ONLY": odd}))
  assert len(parsed.samples) == 158
  assert [(s.sample_id, s.file, s.reason) for s in parsed.skipped] == [
      ("006/?", "odd.xlsx row 15", "no Filename: the clip folder is unknown")]
  assert _by_id(parsed)["006/006_1_3"].apex == -1
  skipped = records.validate(parsed.samples).skipped
  assert ("006/006_1_3", "apex not annotated") in [(s.sample_id, s.reason.split(" (")[0])
                                                   for s in skipped]


# ---- SMIC-E -------------------------------------------------------------------------------------
def _first_samples(parsed: records.Parsed) -> list[records.Sample]:
  return [s for s in parsed.samples if not s.sample_id.endswith("_2")]


def test_smic_e_hs_sheet(caplog):
  with caplog.at_level(logging.WARNING, logger="mejax.annotations.smic"):
    parsed = smic.parse_e(SMIC_E_SHEET, sheet="HS")
  assert parsed.skipped == []
  rows = _first_samples(parsed)
  assert len(rows) == 162 and len(parsed.samples) == 167
  assert dict(collections.Counter(s.emotion for s in rows)) == {
      "negative": 70, "positive": 51, "surprise": 41}
  subjects = {s.subject for s in rows}
  assert subjects == {f"s{n:02d}" for n in (1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 18, 19,
                                            20)}
  ids = {s.sample_id for s in parsed.samples}
  assert "s01/s1_ne_01" in ids and "s01/s1_ne_02" not in ids and "s02/s2_sur_05" not in ids
  assert {s.fps for s in parsed.samples} == {100.0}
  assert {s.apex for s in parsed.samples} == {-1}
  by_id = _by_id(parsed)
  # HS cells are formulas on the VIS sheet: their cached values are read.
  first = by_id["s20/s20_ne_01"]
  assert (first.onset, first.offset, first.clip) == (17581039, 17581055, "s20/s20_ne_01")
  assert first.source == "SMIC-HS-E_annotation.xlsx [HS] row 2"
  # s18_sur_03: the sheet says negative; kept, with a warning naming the row.
  odd = by_id["s18/s18_sur_03"]
  assert (odd.emotion, odd.three_class) == ("negative", "negative")
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert warnings == ["SMIC-HS-E_annotation.xlsx [HS] row 38: s18_sur_03 is named as surprise "
                      "but its Emotion is 'negative'; keeping the sheet's label"]
  # Second micro-expressions: a sample of their own in the same clip folder.
  seconds = {s.sample_id: (s.onset, s.offset, s.clip) for s in parsed.samples
             if s.sample_id.endswith("_2")}
  assert seconds == {
      "s20/s20_ne_06_2": (17668855, 17668883, "s20/s20_ne_06"),
      "s20/s20_ne_09_2": (17678581, 17678613, "s20/s20_ne_09"),
      "s20/s20_sur_02_2": (17693037, 17693057, "s20/s20_sur_02"),
      "s18/s18_ne_01_2": (1644441, 1644477, "s18/s18_ne_01"),
      "s18/s18_sur_03_2": (1695422, 1695446, "s18/s18_sur_03")}
  assert by_id["s18/s18_sur_03_2"].source == ("SMIC-HS-E_annotation.xlsx [HS] row 38 "
                                              "(Onset2F/Offset2F)")
  # Trailing empty rows (the sheet's used range ends at row 169) are not rows.
  assert max(int(s.source.split(" row ")[1].split()[0]) for s in parsed.samples) == 163
  # SMIC has no apex: validate lets every row through.
  assert len(records.validate(parsed.samples).samples) == 167


def test_smic_e_vis_sheet():
  parsed = smic.parse_e(SMIC_E_SHEET, sheet="VIS")
  rows = _first_samples(parsed)
  assert len(rows) == 71 and len(parsed.samples) == 76
  assert dict(collections.Counter(s.emotion for s in rows)) == {
      "positive": 28, "negative": 24, "surprise": 19}
  assert {s.subject for s in rows} == {f"s{n}" for n in (11, 12, 13, 14, 15, 18, 19, 20)}
  assert {s.fps for s in parsed.samples} == {25.0}
  # Camera-prefixed ids: the HS sheet has the same clip names (s20/s20_ne_01).
  assert _by_id(parsed)["VIS/s20/s20_ne_01"].onset == 7750
  assert _by_id(parsed)["VIS/s20/s20_ne_06_2"].clip == "s20/s20_ne_06"


def test_smic_e_sheet_choice(tmp_path):
  assert smic.e_sheet(SMIC_E_SHEET, "HS") == "HS"
  assert smic.e_sheet(SMIC_E_SHEET, "vis") == "VIS"
  with pytest.raises(sheets.AnnotationError, match="no sheet with the NIR rows"):
    smic.e_sheet(SMIC_E_SHEET, "NIR")
  vis = _rows(SMIC_E_SHEET, "VIS")
  nir = _write(tmp_path / "SMIC-NIR-E_annotation.xlsx", {"Notes": [["x"]], "Sheet1": vis})
  assert smic.e_sheet(nir, "NIR") == "Sheet1"
  parsed = smic.parse_e(nir, sheet="Sheet1", fps=25.0)
  assert len(parsed.samples) == 76
  named = smic.parse_e(nir, sheet="Sheet1", camera="NIR")  # its fps from the camera
  assert {s.fps for s in named.samples} == {25.0}
  assert [s.sample_id for s in named.samples] == [f"NIR/{s.sample_id}" for s in parsed.samples]
  with pytest.raises(ValueError, match="give its fps"):
    smic.parse_e(nir, sheet="Sheet1")


def test_smic_e_header_by_name(tmp_path):
  rows = _rows(SMIC_E_SHEET, "HS")
  header = rows[0]
  keep = ["Emotion", "Offset2F", "Onset2F", "OffsetF", "OnsetF", "Filename", "Subject"]
  order = [header.index(name) for name in keep]
  copy = _write(tmp_path / "copy.xlsx", {"HS": [[r[i] for i in order] for r in rows]})
  assert _without_source(smic.parse_e(copy)) == _without_source(smic.parse_e(SMIC_E_SHEET))


def test_smic_e_cli_json(capsys):
  assert cli(["smic_e", str(SMIC_E_SHEET), "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  summary = out["summary"]
  assert (summary["rows"], summary["usable"], summary["skipped"]) == (167, 167, 0)
  assert summary["subjects"] == 16
  # Second MEs count as samples: negative 70 + 2 (s20_ne_06, s20_ne_09) + s18_ne_01 + the
  # negative s18_sur_03; surprise 41 + s20_sur_02.
  assert out["summary"]["emotions"] == {"negative": 74, "positive": 51, "surprise": 42}


def test_smic_e_bad_input(tmp_path, caplog):
  with pytest.raises(FileNotFoundError, match="SMIC-HS-E_annotation.xlsx"):
    smic.parse_e(tmp_path / "SMIC-HS-E_annotation.xlsx")
  with pytest.raises(sheets.AnnotationError, match=r"no sheet 'NIR' \(sheets: \['HS', 'VIS'"):
    smic.parse_e(SMIC_E_SHEET, sheet="NIR")
  header = ["Subject", "Filename", "OnsetF", "OffsetF", "Emotion"]
  # A formula saved without its cached value reads empty: not annotated, with a warning why.
  path = _write(tmp_path / "formulas.xlsx", {"HS": [
      header, [1, "s1_ne_01", 100, "=C2+5", "negative"], [2, "s2_po_01", 10, 20, "happy"],
      [3, None, 1, 2, "negative"]]})
  with caplog.at_level(logging.WARNING, logger="mejax.annotations.smic"):
    parsed = smic.parse_e(path)
  assert [(s.sample_id, s.onset, s.offset) for s in parsed.samples] == [("s01/s1_ne_01", 100, -1)]
  assert [(s.sample_id, s.file, s.reason) for s in parsed.skipped] == [
      ("s02/s2_po_01", "formulas.xlsx [HS] row 3",
       "Emotion 'happy' is not one of ('negative', 'positive', 'surprise')"),
      ("3/?", "formulas.xlsx [HS] row 4", "no Filename: the clip folder is unknown")]
  assert any("rows [2] have an onset without an offset" in r.getMessage()
             for r in caplog.records)
  checked = records.validate(parsed.samples)
  assert not checked.samples and [s.sample_id for s in checked.skipped] == ["s01/s1_ne_01"]
  assert "offset" in checked.skipped[0].reason
  bad = _write(tmp_path / "bad_subject.xlsx",
               {"HS": [header, ["x3", "s3_sur_01", 1, 2, "surprise"]]})
  with pytest.raises(sheets.AnnotationError,
                     match=r"bad_subject.xlsx \[HS\] row 2, column 'Subject'"):
    smic.parse_e(bad)


# ---- SMIC (labels from folders) -----------------------------------------------------------------
def _megc_smic_tree(root: pathlib.Path) -> pathlib.Path:
  """Empty clip folders of the 164 SMIC-HS clips of MEGC2019, named as the raw release names
  them (`s1/micro/negative/s1_ne_01`; MEGC writes `s01_ne_01`)."""
  classes = {"0": "negative", "1": "positive", "2": "surprise"}
  with MEGC_GT.open() as f:
    for dataset, subject, filename, label in csv.reader(f):
      if dataset != "smic":
        continue
      folder = f"s{int(subject[1:])}"
      clip = folder + filename[len(subject):]
      (root / "HS" / folder / "micro" / classes[label] / clip).mkdir(parents=True)
  (root / "HS" / "s1" / "non_micro" / "s1_no_01").mkdir(parents=True)
  return root


def test_smic_folder_labels_megc_layout(tmp_path):
  root = _megc_smic_tree(tmp_path / "SMIC_all_raw")
  parsed = smic.parse(root)
  assert len(parsed.samples) == 164 and parsed.skipped == []
  assert len({s.subject for s in parsed.samples}) == 16
  assert dict(collections.Counter(s.emotion for s in parsed.samples)) == {
      "negative": 70, "positive": 51, "surprise": 43}
  assert all(s.three_class == s.emotion for s in parsed.samples)
  first = _by_id(parsed)["s1/s1_ne_01"]
  assert first == records.Sample(
      dataset="smic", sample_id="s1/s1_ne_01", subject="s1",
      clip="HS/s1/micro/negative/s1_ne_01", emotion="negative", three_class="negative",
      fps=100.0, source="HS/s1/micro/negative/s1_ne_01")
  assert not any("non_micro" in s.clip for s in parsed.samples)
  # The camera folder itself may be given.
  assert _without_source(smic.parse(root / "HS")) == _without_source(parsed)
  assert len(records.validate(parsed.samples).samples) == 164


def test_smic_folder_quirks(tmp_path, caplog):
  root = tmp_path / "SMIC_all_cropped"
  (root / "VIS" / "s11" / "micro" / "negative" / "s11_po_03").mkdir(parents=True)
  (root / "VIS" / "s11" / "micro" / "positive" / "s11_po_01").mkdir(parents=True)
  (root / "VIS" / "s11" / "micro" / "others" / "s11_ot_01").mkdir(parents=True)
  (root / "VIS" / "s7" / "non_micro").mkdir(parents=True)
  with caplog.at_level(logging.WARNING, logger="mejax.annotations.smic"):
    parsed = smic.parse(root, camera="VIS")
  assert [(s.sample_id, s.emotion, s.fps) for s in parsed.samples] == [
      ("VIS/s11/s11_po_03", "negative", 25.0), ("VIS/s11/s11_po_01", "positive", 25.0)]
  assert [(s.sample_id, s.file) for s in parsed.skipped] == [("VIS/s11/others",
                                                              "VIS/s11/micro/others")]
  assert "unknown class folder 'others'" in parsed.skipped[0].reason
  assert [r.getMessage() for r in caplog.records] == [
      "smic: VIS/s11/micro/negative/s11_po_03 is named as positive but lies in the negative "
      "folder; keeping the folder's label 'negative'"]
  with pytest.raises(FileNotFoundError, match=r"smic: no NIR/ folder in .*SMIC_all_cropped"):
    smic.parse(root, camera="NIR")
  with pytest.raises(FileNotFoundError, match="smic: release folder not found"):
    smic.parse(tmp_path / "SMIC_all_raw")
  with pytest.raises(ValueError, match="Unknown SMIC camera"):
    smic.parse(root, camera="IR")


def test_smic_cli_json_on_dummy_release(capsys):
  assert cli(["smic", str(SMIC_DUMMY / "SMIC_all_cropped"), "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert [s["sample_id"] for s in out["samples"]] == [
      "s1/s1_ne_01", "s1/s1_po_01", "s3/s3_ne_02", "s3/s3_po_03", "s3/s3_sur_01"]
  assert out["summary"]["emotions"] == {"negative": 3, "positive": 1, "surprise": 1}
  assert (out["summary"]["rows"], out["summary"]["usable"]) == (5, 5)
