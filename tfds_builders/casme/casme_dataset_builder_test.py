"""casme builder on the fake CASME (v1) of dummy_data/ (see make_dummy_data.py), and on damaged
copies of it: every bad input must end in an error or a recorded skip naming what is wrong."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfds_builders import dummy
from tfds_builders import testing
from tfds_builders.casme import casme_dataset_builder
from tfds_builders.casme import make_dummy_data

DUMMY = pathlib.Path(__file__).parent / "dummy_data"
SECTION_A = pathlib.Path("CASME", "RAW", "CASME_A", "Section A")
SECTION_B = pathlib.Path("CASME", "RAW", "CASME_B", "Section B")


class CasmeRawTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = casme_dataset_builder.Builder
  SPLITS = {"train": make_dummy_data.N_BUILT}

  def _download_and_prepare_as_dataset(self, builder):
    super()._download_and_prepare_as_dataset(builder)
    # The row without an apex is kept out, with its reason, and nothing else is.
    skipped = builder.info.metadata["skipped"]
    assert [s["sample_id"] for s in skipped] == ["sub08/EP03"], skipped
    assert "apex not annotated" in skipped[0]["reason"]
    assert skipped[0]["file"] == "Section B.xls row 3"


def _build(manual_dir: pathlib.Path, data_dir: pathlib.Path):
  builder = casme_dataset_builder.Builder(config="raw", data_dir=str(data_dir))
  return testing.prepare(builder, manual_dir)


def test_records_of_both_sections_and_frame_namings(tmp_path):
  examples = testing.records(_build(DUMMY / "CASME", tmp_path))  # manual_dir = the CASME folder
  assert sorted(examples) == ["sub01/EP01_5", "sub01/EP01_6", "sub02/EP10", "sub08/EP02_1"]
  ex = examples["sub01/EP01_5"]  # img<N>.jpg
  assert ex["frames"].shape == (6, 128, 128, 3)
  assert list(ex["source_frames"]) == [2, 3, 4, 5, 6, 7]
  assert (ex["onset"], ex["apex"], ex["offset"]) == (0, 2, 5)
  assert ex["fps"] == 60.0 and ex["annotation"] == b"Section A.xls row 2"
  assert ex["three_class"] == b"positive" and ex["objective_class"] == 0
  assert list(examples["sub02/EP10"]["source_frames"]) == [2, 3, 4, 5, 6]   # EP10-<N>.jpg
  assert list(examples["sub08/EP02_1"]["source_frames"]) == [2, 3, 4, 5, 6, 7]  # -00N.jpg
  assert examples["sub08/EP02_1"]["emotion"] == b"contempt"  # 'comtempt' in the sheet
  assert examples["sub01/EP01_6"]["emotion"] == b"disgust"  # 'Disgust' in the sheet


def test_building_twice_is_byte_identical(tmp_path):
  _build(DUMMY, tmp_path / "a")
  _build(DUMMY, tmp_path / "b")
  first = testing.tfrecord_bytes(tmp_path / "a")
  assert first and first == testing.tfrecord_bytes(tmp_path / "b")


def test_missing_manual_dir(tmp_path):
  # TFDS itself refuses an absent manual_dir, naming it and printing our instructions.
  with pytest.raises((AssertionError, FileNotFoundError), match="does not exist") as error:
    _build(tmp_path / "nowhere", tmp_path / "data")
  assert "Section A/Section A.xls" in str(error.value)


def test_missing_section_sheets(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / SECTION_A / "Section A.xls").unlink()
  (manual / SECTION_B / "Section B.xls").unlink()
  with pytest.raises(FileNotFoundError, match="no section sheet") as error:
    _build(manual, tmp_path / "data")
  assert str(manual) in str(error.value) and "Section A.xls" in str(error.value)


def test_one_missing_sheet_builds_the_other_section(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / SECTION_B / "Section B.xls").unlink()
  assert sorted(testing.records(_build(manual, tmp_path / "data"))) == [
      "sub01/EP01_5", "sub01/EP01_6", "sub02/EP10"]


def test_truncated_image_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  frame = manual / SECTION_B / "sub08" / "EP02_1" / "EP02_1-004.jpg"
  frame.write_bytes(frame.read_bytes()[:300])
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert "EP02_1-004.jpg: truncated image" in skipped["sub08/EP02_1"]["reason"]
  assert skipped["sub08/EP02_1"]["file"] == "Section B.xls row 2"


def test_missing_frame_number_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / SECTION_A / "sub02" / "EP10" / "EP10-4.jpg").unlink()
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert "frame number(s) missing between 2 and 6: 4" in skipped["sub02/EP10"]["reason"]


def test_row_pointing_past_the_frames_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  clips = [c if c[2] != "EP01_6" else c[:6] + (20,) + c[7:] for c in make_dummy_data.CLIPS]
  # xlwt is a generator-only dependency: the edited copy is an .xlsx, which is read the same.
  (manual / SECTION_A / "Section A.xls").unlink()
  dummy.write_xlsx(manual / SECTION_A / "Section A.xlsx",
                   {"Sheet1": make_dummy_data.sheet_rows("A", clips)})
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert skipped["sub01/EP01_6"]["file"] == "Section A.xlsx row 3"
  assert "annotated frame(s) [20]" in skipped["sub01/EP01_6"]["reason"]
  assert "holds frames 1..9" in skipped["sub01/EP01_6"]["reason"]


def test_face_not_found_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  clip = manual / SECTION_A / "sub01" / "EP01_5"
  blank = cv2.imencode(".jpg", np.full((120, 160, 3), 90, np.uint8))[1].tobytes()
  for frame in clip.iterdir():
    frame.write_bytes(blank)
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert "img2.jpg" in skipped["sub01/EP01_5"]["reason"]  # the onset (reference) frame
