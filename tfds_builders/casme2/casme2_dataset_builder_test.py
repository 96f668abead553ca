"""casme2 builder on the fake CASME II of dummy_data/ (see make_dummy_data.py), and on damaged
copies of it: every bad input must end in an error or a recorded skip naming what is wrong."""

from __future__ import annotations

import pathlib
import shutil

import pytest
import tensorflow_datasets as tfds

from tfds_builders import dummy
from tfds_builders import testing
from tfds_builders.casme2 import casme2_dataset_builder
from tfds_builders.casme2 import make_dummy_data

DUMMY = pathlib.Path(__file__).parent / "dummy_data"


class _Casme2Checks:
  """Shared by the test cases below (a mixin, so pytest does not collect it on its own)."""
  DATASET_CLASS = casme2_dataset_builder.Builder
  SPLITS = {"train": make_dummy_data.N_BUILT}

  def _download_and_prepare_as_dataset(self, builder):
    super()._download_and_prepare_as_dataset(builder)
    # The apex '/' row is kept out, with its reason, and nothing else is.
    skipped = builder.info.metadata["skipped"]
    assert [s["sample_id"] for s in skipped] == ["sub04/EP12_01f"], skipped
    assert "apex not annotated" in skipped[0]["reason"]
    assert skipped[0]["file"] == "CASME2-coding-20140508.xlsx row 6"
    assert builder.info.metadata["counts"] == {"annotated": 6, "built": 5, "skipped": 1}


class Casme2CroppedTest(_Casme2Checks, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["cropped"]


class Casme2RawSelectedTest(_Casme2Checks, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["raw_selected"]


class Casme2RawTest(_Casme2Checks, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["raw"]


# ---- records and bad input, built into tmp_path -----------------------------------------------

def _build(manual_dir: pathlib.Path, data_dir: pathlib.Path, config: str = "cropped", **options):
  # options (size, frame_range, repair, ...) derive a config from the shipped one
  builder = casme2_dataset_builder.Builder(config=config, data_dir=str(data_dir), **options)
  return testing.prepare(builder, manual_dir)


def test_cropped_records(tmp_path):
  examples = testing.records(_build(DUMMY, tmp_path))
  assert sorted(examples) == ["sub01/EP02_01f", "sub01/EP03_02", "sub02/EP06_01f",
                              "sub02/EP09_05f", "sub04/EP13_04"]
  ex = examples["sub01/EP02_01f"]
  assert ex["frames"].shape == (5, 128, 128, 3)  # reg_img3..7, resized to the stored size
  assert list(ex["source_frames"]) == [3, 4, 5, 6, 7]
  assert (ex["onset"], ex["apex"], ex["offset"]) == (0, 2, 4)
  assert (ex["onset_frame"], ex["apex_frame"], ex["offset_frame"]) == (3, 5, 7)
  assert ex["subject"] == b"sub01" and ex["emotion"] == b"happiness"
  assert ex["three_class"] == b"positive" and ex["action_units"] == b"12"
  assert ex["objective_class"] == 1  # from CASME2-ObjectiveClasses.xlsx (2014 sheet)
  assert ex["fps"] == 200.0 and ex["annotation"] == b"CASME2-coding-20140508.xlsx row 2"
  assert examples["sub01/EP03_02"]["action_units"] == b"?"
  assert examples["sub01/EP03_02"]["three_class"] == b""
  onset_is_apex = examples["sub02/EP09_05f"]
  assert (onset_is_apex["onset"], onset_is_apex["apex"]) == (0, 0)


def test_midpoint_repair_keeps_the_slash_row(tmp_path):
  builder = _build(DUMMY, tmp_path, repair="midpoint")
  examples = testing.records(builder)
  assert len(examples) == 6 and builder.info.metadata["skipped"] == []
  assert examples["sub04/EP12_01f"]["apex_frame"] == 4  # (2 + 6) // 2
  assert builder.info.metadata["repaired"][0]["sample_id"] == "sub04/EP12_01f"


def test_raw_whole_clip(tmp_path):
  builder = _build(DUMMY, tmp_path, config="raw", frame_range="whole", size=64)
  ex = testing.records(builder)["sub01/EP02_01f"]
  assert ex["frames"].shape == (9, 64, 64, 3)  # img1..img9 of CASME2-RAW
  assert list(ex["source_frames"]) == list(range(1, 10))
  assert (ex["onset"], ex["apex"], ex["offset"]) == (2, 4, 6)
  assert (ex["onset_frame"], ex["apex_frame"], ex["offset_frame"]) == (3, 5, 7)


def test_building_twice_is_byte_identical(tmp_path):
  _build(DUMMY, tmp_path / "a")
  _build(DUMMY, tmp_path / "b")
  first = testing.tfrecord_bytes(tmp_path / "a")
  assert first and first == testing.tfrecord_bytes(tmp_path / "b")


@pytest.mark.parametrize("config", ["cropped", "raw"])
def test_records_do_not_depend_on_the_worker_count(tmp_path, monkeypatch, config):
  """Clips are built by several processes; the records and their order are the same as one
  process writes them (raw: face detection and cropping in the workers too)."""
  built = {}
  for workers in ("1", "2", "3"):
    monkeypatch.setenv("MEJAX_BUILD_WORKERS", workers)
    builder = _build(DUMMY, tmp_path / workers, config=config)
    built[workers] = testing.tfrecord_bytes(tmp_path / workers)
    assert builder.info.metadata["counts"] == {"annotated": 6, "built": 5, "skipped": 1}
  assert built["1"] and built["1"] == built["2"] == built["3"]


def test_a_bad_worker_count_is_refused(tmp_path, monkeypatch):
  monkeypatch.setenv("MEJAX_BUILD_WORKERS", "0")
  with pytest.raises(ValueError, match="MEJAX_BUILD_WORKERS='0': expected a whole number >= 1"):
    _build(DUMMY, tmp_path)


@pytest.mark.parametrize("make", [False, True], ids=["absent", "empty"])
def test_missing_or_empty_manual_dir(tmp_path, make):
  manual = tmp_path / "nowhere"
  if make:
    manual.mkdir()
  # TFDS itself refuses an absent or empty manual_dir, naming it and printing our instructions.
  with pytest.raises((AssertionError, FileNotFoundError), match="does not exist") as error:
    _build(manual, tmp_path / "data")
  assert str(manual) in str(error.value)
  assert "CASME2-coding-20140508.xlsx" in str(error.value)
  assert "Cropped/sub01/EP02_01f/reg_img46.jpg" in str(error.value)


def test_missing_release_folder(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  shutil.rmtree(manual / "Cropped")
  with pytest.raises(FileNotFoundError, match="release folder 'Cropped' not found") as error:
    _build(manual, tmp_path / "data")
  assert str(manual / "Cropped") in str(error.value)


def test_missing_coding_sheet(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / "CASME2-coding-20140508.xlsx").unlink()
  with pytest.raises(FileNotFoundError, match="no CASME II coding sheet") as error:
    _build(manual, tmp_path / "data")
  assert str(manual / "CASME2-coding*.xls*") in str(error.value)


def test_release_and_sheet_one_level_down(tmp_path):
  manual = tmp_path / "manual"
  shutil.copytree(DUMMY, manual / "CASME2")
  assert len(testing.records(_build(manual, tmp_path / "data"))) == make_dummy_data.N_BUILT


def test_release_folder_nested_in_itself(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / "Cropped").rename(manual / "inner")
  (manual / "Cropped").mkdir()
  (manual / "inner").rename(manual / "Cropped" / "Cropped")
  assert len(testing.records(_build(manual, tmp_path / "data"))) == make_dummy_data.N_BUILT


def test_truncated_image_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  frame = manual / "Cropped" / "sub02" / "EP06_01f" / "reg_img4.jpg"
  frame.write_bytes(frame.read_bytes()[:200])
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert "truncated image" in skipped["sub02/EP06_01f"]["reason"]
  assert "reg_img4.jpg" in skipped["sub02/EP06_01f"]["reason"]
  assert skipped["sub02/EP06_01f"]["file"] == "CASME2-coding-20140508.xlsx row 4"


def test_unreadable_image_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / "Cropped" / "sub01" / "EP03_02" / "reg_img3.jpg").write_bytes(b"not a jpeg")
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert "reg_img3.jpg: not a decodable image" in skipped["sub01/EP03_02"]["reason"]


def test_missing_frame_number_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / "Cropped" / "sub04" / "EP13_04" / "reg_img6.jpg").unlink()
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  reason = skipped["sub04/EP13_04"]["reason"]
  assert "frame number(s) missing between 4 and 8: 6" in reason
  assert str(pathlib.Path("Cropped", "sub04", "EP13_04")) in reason


def test_row_pointing_past_the_frames_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  clips = [c if c[1] != "EP02_01f" else c[:4] + (12,) + c[5:] for c in make_dummy_data.CLIPS]
  dummy.write_xlsx(manual / make_dummy_data.CODING_SHEET,
                   {"Sheet1": make_dummy_data.coding_rows(clips)})
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert "annotated frame(s) [12]" in skipped["sub01/EP02_01f"]["reason"]
  assert "holds frames 3..7" in skipped["sub01/EP02_01f"]["reason"]


def test_missing_clip_folder_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  shutil.rmtree(manual / "Cropped" / "sub04" / "EP13_04")
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert "does not exist" in skipped["sub04/EP13_04"]["reason"]


def test_face_not_found_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  clip = manual / "CASME2_RAW_selected" / "sub04" / "EP13_04"
  blank = clip / "img4.jpg"  # the reference (onset) frame: nothing face-like on it
  import cv2
  import numpy as np
  for frame in sorted(clip.iterdir()):
    frame.write_bytes(cv2.imencode(".jpg", np.full((120, 160, 3), 90, np.uint8))[1].tobytes())
  skipped = testing.skips(_build(manual, tmp_path / "data", config="raw_selected"))
  assert "sub04/EP13_04" in skipped
  assert blank.name in skipped["sub04/EP13_04"]["reason"]
