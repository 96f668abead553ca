"""samm builder on the fake SAMM of dummy_data/ (see make_dummy_data.py), and on damaged copies
of it: every bad input must end in an error or a recorded skip naming what is wrong.

The shipped config (`raw`) crops faces; the tests of records and bad input that do not concern
face cropping build a config of their own that reads the frames as they are (`cropped=True`),
so they check the annotation and frame handling alone.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil

import pytest
import tensorflow_datasets as tfds

from tfds_builders import testing
from tfds_builders.samm import samm_dataset_builder

DUMMY = pathlib.Path(__file__).parent / "dummy_data"
SHEET = "SAMM_Micro_FACS_Codes_v2.xlsx"
BUILT = ["006/006_1_2", "006/006_2_4", "007/007_3_1", "007/007_4_1"]


def _check_skips(builder) -> None:
  skipped = {s["sample_id"]: s for s in builder.info.metadata["skipped"]}
  assert sorted(skipped) == ["011/011_2_1", "011/011_5_1"], skipped
  typo = skipped["011/011_5_1"]
  assert typo["reason"].startswith("apex 3310 outside onset..offset 3300..3304")
  assert typo["file"] == f"{SHEET} row 19"
  beyond = skipped["011/011_2_1"]
  assert "annotated frame(s) [409]" in beyond["reason"]
  assert "holds frames 399..404" in beyond["reason"]
  assert beyond["file"] == f"{SHEET} row 20"
  assert builder.info.metadata["counts"] == {"annotated": 6, "built": 4, "skipped": 2}


class SammRawTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = samm_dataset_builder.Builder
  SPLITS = {"train": len(BUILT)}

  def _download_and_prepare_as_dataset(self, builder):
    super()._download_and_prepare_as_dataset(builder)
    _check_skips(builder)


# ---- records and bad input, built into tmp_path -----------------------------------------------
def _build(manual_dir: pathlib.Path, data_dir: pathlib.Path, *, as_is: bool = True, **options):
  config = samm_dataset_builder.Builder.BUILDER_CONFIGS[0]
  if as_is:  # frames read as they are: no face detection in these tests
    config = dataclasses.replace(config, name="raw_as_is", cropped=True, size=48, **options)
  builder = samm_dataset_builder.Builder(config=config, data_dir=str(data_dir))
  return testing.prepare(builder, manual_dir)


def test_records(tmp_path):
  builder = _build(DUMMY, tmp_path)
  _check_skips(builder)
  examples = testing.records(builder)
  assert sorted(examples) == BUILT
  ex = examples["006/006_1_2"]
  assert ex["frames"].shape == (6, 48, 48, 3)    # onset 5561 .. offset 5566
  assert list(ex["source_frames"]) == list(range(5561, 5567))
  assert (ex["onset"], ex["apex"], ex["offset"]) == (0, 2, 5)
  assert (ex["onset_frame"], ex["apex_frame"], ex["offset_frame"]) == (5561, 5563, 5566)
  assert ex["dataset"] == b"samm" and ex["subject"] == b"006"
  assert ex["emotion"] == b"anger" and ex["three_class"] == b"negative"
  assert ex["action_units"] == b"4+7"             # '4+7 ' in the sheet
  assert ex["objective_class"] == 3 and ex["fps"] == 200.0
  assert ex["annotation"] == f"{SHEET} row 15".encode()
  # Grey frames are stored as RGB with equal channels.
  assert (ex["frames"][..., 0] == ex["frames"][..., 2]).all()
  other = examples["007/007_4_1"]
  assert other["emotion"] == b"other" and other["three_class"] == b""


def test_whole_clip_and_midpoint_repair(tmp_path):
  builder = _build(DUMMY, tmp_path, frame_range="whole", repair="midpoint")
  examples = testing.records(builder)
  assert sorted(examples) == BUILT + ["011/011_5_1"]
  assert list(testing.skips(builder)) == ["011/011_2_1"]  # its frames still do not exist
  assert list(examples["006/006_1_2"]["source_frames"]) == list(range(5560, 5568))
  repaired = examples["011/011_5_1"]
  assert repaired["apex_frame"] == 3302 and repaired["apex"] == 3302 - 3299
  assert builder.info.metadata["repaired"] == [{
      "sample_id": "011/011_5_1", "annotation": f"{SHEET} row 19",
      "repair": "apex 3310 outside onset..offset 3300..3304; apex set to the midpoint 3302"}]


def test_manual_dir_is_the_samm_folder(tmp_path):
  # The SAMM folder itself, renamed as users do: the sheet lies in it.
  manual = tmp_path / "SAMM_CROP"
  shutil.copytree(DUMMY / "SAMM", manual)
  assert sorted(testing.records(_build(manual, tmp_path / "data"))) == BUILT


def test_sheet_beside_the_samm_folder(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / "SAMM" / SHEET).rename(manual / "SAMM_Micro_FACS_Codes.xlsx")
  assert sorted(testing.records(_build(manual, tmp_path / "data"))) == BUILT


def test_building_twice_is_byte_identical(tmp_path):
  _build(DUMMY, tmp_path / "a")
  _build(DUMMY, tmp_path / "b")
  first = testing.tfrecord_bytes(tmp_path / "a")
  assert first and first == testing.tfrecord_bytes(tmp_path / "b")


def test_missing_manual_dir(tmp_path):
  manual = tmp_path / "nowhere"
  # TFDS itself refuses an absent manual_dir, naming it and printing our instructions.
  with pytest.raises((AssertionError, FileNotFoundError), match="does not exist") as error:
    _build(manual, tmp_path / "data")
  assert str(manual) in str(error.value)
  assert "SAMM/006/006_1_2/006_05562.jpg" in str(error.value)


def test_missing_coding_sheet(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / "SAMM" / SHEET).unlink()
  with pytest.raises(FileNotFoundError, match="samm: no SAMM coding sheet found") as error:
    _build(manual, tmp_path / "data")
  assert str(manual / "SAMM_Micro_FACS_Codes*.xlsx") in str(error.value)
  assert "SAMM/006/006_1_2/006_05562.jpg" in str(error.value)  # the instructions


def test_missing_subject_folders(tmp_path):
  manual = tmp_path / "manual"
  manual.mkdir()
  shutil.copy(DUMMY / "SAMM" / SHEET, manual / SHEET)
  with pytest.raises(FileNotFoundError, match="samm: no subject folders") as error:
    _build(manual, tmp_path / "data")
  assert str(manual) in str(error.value)


def test_truncated_image_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  frame = manual / "SAMM" / "006" / "006_2_4" / "006_00182.jpg"
  frame.write_bytes(frame.read_bytes()[:300])
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  reason = skipped["006/006_2_4"]["reason"]
  assert "006_00182.jpg: truncated image" in reason
  assert skipped["006/006_2_4"]["file"] == f"{SHEET} row 16"


def test_missing_frame_number_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / "SAMM" / "007" / "007_3_1" / "007_01004.jpg").unlink()
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  reason = skipped["007/007_3_1"]["reason"]
  assert "1 frame number(s) missing between 1002 and 1006: 1004" in reason
  assert str(pathlib.Path("SAMM", "007", "007_3_1")) in reason


def test_missing_clip_folder_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  shutil.rmtree(manual / "SAMM" / "007" / "007_4_1")
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert "does not exist" in skipped["007/007_4_1"]["reason"]
  assert str(pathlib.Path("SAMM", "007", "007_4_1")) in skipped["007/007_4_1"]["reason"]


def test_dummy_data_is_reproducible(tmp_path, monkeypatch):
  from tfds_builders.samm import make_dummy_data
  testing.assert_dummy_data_reproducible(make_dummy_data, DUMMY, tmp_path, monkeypatch)


def test_face_not_found_is_a_recorded_skip(tmp_path):
  import cv2
  import numpy as np
  manual = testing.copy_dummy(DUMMY, tmp_path)
  clip = manual / "SAMM" / "007" / "007_3_1"
  for frame in clip.iterdir():  # nothing face-like, the reference (onset) frame included
    frame.write_bytes(cv2.imencode(".jpg", np.full((120, 160), 90, np.uint8))[1].tobytes())
  builder = _build(manual, tmp_path / "data", as_is=False)
  skipped = testing.skips(builder)
  assert "007_01002.jpg" in skipped["007/007_3_1"]["reason"]  # onset 1002
  assert "no frontal face" in skipped["007/007_3_1"]["reason"]
  assert sorted(testing.records(builder)) == ["006/006_1_2", "006/006_2_4", "007/007_4_1"]
