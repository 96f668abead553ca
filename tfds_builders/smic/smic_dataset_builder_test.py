"""smic builder on the fake SMIC of dummy_data/ (see make_dummy_data.py: the cropped, raw and
SMIC-E releases of the three cameras), and on damaged copies of it: every bad input must end in
an error or a recorded skip naming what is wrong.

Tests that do not concern face cropping build a config of their own that reads the raw frames
as they are (`cropped=True`), so they check the annotation and frame handling alone.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import shutil

import pytest
import tensorflow_datasets as tfds

from tfds_builders import testing
from tfds_builders.smic import smic_dataset_builder

DUMMY = pathlib.Path(__file__).parent / "dummy_data"
E_SHEET = "SMIC-HS-E_annotation.xlsx"
CONFIGS = {c.name: c for c in smic_dataset_builder.Builder.BUILDER_CONFIGS}


class _SmicChecks:
  """Shared by the test cases below (a mixin, so pytest does not collect it on its own).
  EXPECTED_SKIPS: {config: {sample id: text in its reason}}."""
  DATASET_CLASS = smic_dataset_builder.Builder
  EXPECTED_SKIPS: dict[str, dict[str, str]] = {}

  def _download_and_prepare_as_dataset(self, builder):
    super()._download_and_prepare_as_dataset(builder)
    expected = self.EXPECTED_SKIPS.get(builder.builder_config.name, {})
    skipped = {s["sample_id"]: s["reason"] for s in builder.info.metadata["skipped"]}
    assert sorted(skipped) == sorted(expected), skipped
    for sample_id, text in expected.items():
      assert text in skipped[sample_id], (sample_id, skipped[sample_id])


class SmicCroppedHsTest(_SmicChecks, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["hs"]
  SPLITS = {"train": 4}
  EXPECTED_SKIPS = {"hs": {"s3/s3_ne_02": "1 frame number(s) missing between 301 and 305: 303"}}


class SmicCroppedVisNirTest(_SmicChecks, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["vis", "nir"]
  SPLITS = {"train": 2}


class SmicRawHsTest(_SmicChecks, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["hs_raw"]
  SPLITS = {"train": 2}
  EXPECTED_SKIPS = {"hs_raw": {"s3/s3_po_01": "image000502.bmp: truncated image"}}


class SmicRawVisNirTest(_SmicChecks, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["vis_raw", "nir_raw"]
  SPLITS = {"train": 1}


class SmicEHsTest(_SmicChecks, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["hs_e"]
  SPLITS = {"train": 4}
  EXPECTED_SKIPS = {"hs_e": {"s03/s3_ne_03": "does not exist"}}


class SmicEVisNirTest(_SmicChecks, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["vis_e", "nir_e"]
  SPLITS = {"train": 1}


# ---- records and bad input, built into tmp_path -----------------------------------------------
def _build(manual_dir: pathlib.Path, data_dir: pathlib.Path, config: str = "hs", *,
           as_is: bool = True, **options):
  base = CONFIGS[config]
  if as_is or options:
    # Frames read as they are (no face detection here), at a small stored size.
    base = dataclasses.replace(base, name=f"{config}_test", cropped=base.cropped or as_is,
                               size=48, **options)
  builder = smic_dataset_builder.Builder(config=base, data_dir=str(data_dir))
  return testing.prepare(builder, manual_dir)


def test_configs():
  assert smic_dataset_builder.Builder.VERSION == "1.1.0"  # VIS / NIR ids camera-prefixed
  assert sorted(CONFIGS) == ["hs", "hs_e", "hs_raw", "nir", "nir_e", "nir_raw", "vis", "vis_e",
                             "vis_raw"]
  assert smic_dataset_builder.Builder.DEFAULT_CONFIG_NAME == "hs"
  assert [c.name for c in CONFIGS.values() if c.cropped] == ["hs", "vis", "nir"]
  assert {c.name: c.camera for c in CONFIGS.values()}["nir_e"] == "NIR"


def test_cropped_hs_records(tmp_path, caplog):
  with caplog.at_level(logging.WARNING, logger="mejax.annotations.smic"):
    builder = _build(DUMMY, tmp_path)
  examples = testing.records(builder)
  # non_micro/s1_no_01 is not read; s3_ne_02 (frame 303 missing) is a recorded skip.
  assert sorted(examples) == ["s1/s1_ne_01", "s1/s1_po_01", "s3/s3_po_03", "s3/s3_sur_01"]
  assert testing.skips(builder)["s3/s3_ne_02"]["file"] == "HS/s3/micro/negative/s3_ne_02"
  ex = examples["s3/s3_sur_01"]
  assert ex["frames"].shape == (5, 48, 48, 3)      # the whole folder: SMIC has no timing
  assert list(ex["source_frames"]) == list(range(17581039, 17581044))
  assert (ex["onset"], ex["apex"], ex["offset"]) == (0, -1, 4)
  assert (ex["onset_frame"], ex["apex_frame"], ex["offset_frame"]) == (17581039, -1, 17581043)
  assert ex["dataset"] == b"smic" and ex["subject"] == b"s3" and ex["fps"] == 100.0
  assert ex["emotion"] == b"surprise" and ex["three_class"] == b"surprise"
  assert ex["annotation"] == b"HS/s3/micro/surprise/s3_sur_01"
  # Named as positive, filed under negative: the folder's label, with a warning.
  assert examples["s3/s3_po_03"]["emotion"] == b"negative"
  assert any("s3_po_03 is named as positive" in r.getMessage() for r in caplog.records)


def test_cropped_vis_reads_reg_image_names(tmp_path):
  examples = testing.records(_build(DUMMY, tmp_path, "vis"))
  # The camera first: HS has clips of the same names (builder version 1.1.0).
  assert sorted(examples) == ["VIS/s11/s11_ne_01", "VIS/s11/s11_po_01"]
  assert examples["VIS/s11/s11_po_01"]["fps"] == 25.0
  assert examples["VIS/s11/s11_po_01"]["subject"] == b"s11"  # as in HS: one LOSO fold
  assert list(examples["VIS/s11/s11_po_01"]["source_frames"]) == [50, 51, 52, 53]


def test_e_records(tmp_path):
  builder = _build(DUMMY, tmp_path, "hs_e")
  examples = testing.records(builder)
  assert sorted(examples) == ["s01/s1_ne_01", "s03/s3_sur_01", "s03/s3_sur_01_2",
                              "s03/s3_sur_02"]
  skipped = testing.skips(builder)["s03/s3_ne_03"]
  assert skipped["file"] == f"{E_SHEET} [HS] row 5"
  assert str(pathlib.Path("SMIC-HS-E", "s03", "s3_ne_03")) in skipped["reason"]
  first = examples["s01/s1_ne_01"]
  assert list(first["source_frames"]) == [203, 204, 205, 206]   # onset..offset
  assert (first["onset"], first["apex"], first["offset"]) == (0, -1, 3)
  assert first["subject"] == b"s01" and first["dataset"] == b"smic"
  assert first["annotation"] == f"{E_SHEET} [HS] row 2".encode()
  second = examples["s03/s3_sur_01_2"]
  assert list(second["source_frames"]) == [17581046, 17581047, 17581048]
  assert second["annotation"] == f"{E_SHEET} [HS] row 3 (Onset2F/Offset2F)".encode()
  assert examples["s03/s3_sur_02"]["emotion"] == b"negative"   # as the sheet says


def test_e_whole_clip(tmp_path):
  examples = testing.records(_build(DUMMY, tmp_path, "hs_e", frame_range="whole"))
  first = examples["s01/s1_ne_01"]
  assert list(first["source_frames"]) == list(range(200, 210))
  assert (first["onset"], first["offset"]) == (3, 6)
  assert (first["onset_frame"], first["offset_frame"]) == (203, 206)
  second = examples["s03/s3_sur_01_2"]
  assert len(second["source_frames"]) == 11 and (second["onset"], second["offset"]) == (7, 9)


def test_vis_e_uses_the_vis_sheet_of_the_hs_workbook(tmp_path):
  examples = testing.records(_build(DUMMY, tmp_path, "vis_e"))
  assert sorted(examples) == ["VIS/s11/s11_po_01"]
  ex = examples["VIS/s11/s11_po_01"]
  assert ex["fps"] == 25.0 and ex["annotation"] == f"{E_SHEET} [VIS] row 2".encode()
  assert list(ex["source_frames"]) == [52, 53, 54]


def test_nir_e_needs_its_workbook(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / "SMIC-E_raw image" / "NIR_long" / "SMIC-NIR-E_annotation.xlsx").unlink()
  with pytest.raises(FileNotFoundError, match="smic/nir_e_test: no SMIC-NIR-E_annotation") as e:
    _build(manual, tmp_path / "data", "nir_e")
  assert "SMIC-E_raw image/HS_long/SMIC-HS-E_annotation.xlsx" in str(e.value)  # instructions


def test_building_twice_is_byte_identical(tmp_path):
  _build(DUMMY, tmp_path / "a", "hs_e")
  _build(DUMMY, tmp_path / "b", "hs_e")
  first = testing.tfrecord_bytes(tmp_path / "a")
  assert first and first == testing.tfrecord_bytes(tmp_path / "b")


def test_manual_dir_is_the_release_folder_or_above_it(tmp_path):
  expected = ["s1/s1_ne_01", "s1/s1_po_01", "s3/s3_po_03", "s3/s3_sur_01"]
  assert sorted(testing.records(_build(DUMMY / "SMIC_all_cropped", tmp_path / "a"))) == expected
  above = tmp_path / "downloads"
  shutil.copytree(DUMMY / "SMIC_all_cropped", above / "SMIC" / "SMIC_all_cropped")
  assert sorted(testing.records(_build(above, tmp_path / "b"))) == expected


def test_missing_manual_dir(tmp_path):
  manual = tmp_path / "nowhere"
  with pytest.raises((AssertionError, FileNotFoundError), match="does not exist") as error:
    _build(manual, tmp_path / "data")
  assert str(manual) in str(error.value)
  assert "SMIC_all_cropped/{HS,VIS,NIR}/s1/micro" in str(error.value)


def test_missing_release_folder(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  shutil.rmtree(manual / "SMIC_all_raw")
  with pytest.raises(FileNotFoundError, match="smic/hs_raw_test: no 'SMIC_all_raw' folder"):
    _build(manual, tmp_path / "data", "hs_raw")
  shutil.rmtree(manual / "SMIC_all_cropped" / "NIR")
  with pytest.raises(FileNotFoundError, match=r"smic/nir_test: no NIR/ folder in .*"
                                              r"SMIC_all_cropped"):
    _build(manual, tmp_path / "data", "nir")
  shutil.rmtree(manual / "SMIC-E_raw image" / "VIS_long")
  with pytest.raises(FileNotFoundError, match=r"smic/vis_e_test: clip folder .*SMIC-VIS-E "
                                              "not found"):
    _build(manual, tmp_path / "data", "vis_e")


def test_unreadable_image_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  frame = manual / "SMIC_all_cropped" / "HS" / "s1" / "micro" / "positive" / "s1_po_01"
  (frame / "image000203.bmp").write_bytes(b"BM not really")
  skipped = testing.skips(_build(manual, tmp_path / "data"))
  assert "image000203.bmp" in skipped["s1/s1_po_01"]["reason"]
  assert skipped["s1/s1_po_01"]["file"] == "HS/s1/micro/positive/s1_po_01"


def test_e_row_past_the_frames_is_a_recorded_skip(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  clip = manual / "SMIC-E_raw image" / "HS_long" / "SMIC-HS-E" / "s01" / "s1_ne_01"
  for number in (205, 206, 207, 208, 209):
    (clip / f"image{number:06d}.jpg").unlink()
  skipped = testing.skips(_build(manual, tmp_path / "data", "hs_e"))
  reason = skipped["s01/s1_ne_01"]["reason"]
  assert "annotated frame(s) [206]" in reason and "holds frames 200..204" in reason


def test_face_not_found_is_a_recorded_skip(tmp_path):
  import cv2
  import numpy as np
  manual = testing.copy_dummy(DUMMY, tmp_path)
  clip = manual / "SMIC_all_raw" / "VIS" / "s11" / "micro" / "positive" / "s11_po_01"
  for frame in clip.iterdir():
    frame.write_bytes(cv2.imencode(".bmp", np.full((120, 160), 90, np.uint8))[1].tobytes())
  with pytest.raises(ValueError, match="smic/vis_raw: no clip could be built") as error:
    _build(manual, tmp_path / "data", "vis_raw", as_is=False)
  assert "image000050.bmp" in str(error.value) and "no frontal face" in str(error.value)


def test_dummy_data_is_reproducible(tmp_path, monkeypatch):
  from tfds_builders.smic import make_dummy_data
  testing.assert_dummy_data_reproducible(make_dummy_data, DUMMY, tmp_path, monkeypatch)
