"""casme_sq builder on its dummy data (tfds_builders/casme_sq/make_dummy_data.py), and its
errors and skips on damaged copies of it."""

from __future__ import annotations

import pathlib

import pytest
import tensorflow_datasets as tfds

from tfds_builders import testing
from tfds_builders.casme_sq import casme_sq_dataset_builder

DUMMY = pathlib.Path(__file__).parent / "dummy_data"


class _SkipsChecked:
  """Mixin: also checks, per built config, which samples were recorded as skipped."""
  DATASET_CLASS = casme_sq_dataset_builder.Builder
  SKIPPED: dict[str, set[str]] = {}

  def _download_and_prepare_as_dataset(self, builder):
    super()._download_and_prepare_as_dataset(builder)
    skipped = {s["sample_id"] for s in builder.info.metadata["skipped"]}
    self.assertEqual(skipped, self.SKIPPED[builder.builder_config.name])


class MicroTest(_SkipsChecked, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["micro"]
  SPLITS = {"train": 3}  # s19/anger1_2 is missing from cropped/
  SKIPPED = {"micro": {"s19/anger1_2"}}


class MacroTest(_SkipsChecked, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["macro"]
  SPLITS = {"train": 2}  # offset 0 (s15/anger2_1) and apex > offset (s19/disgust2_1) kept out
  SKIPPED = {"macro": {"s15/anger2_1", "s19/disgust2_1"}}


class MicroRawTest(_SkipsChecked, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["micro_raw"]
  SPLITS = {"train": 4}
  SKIPPED = {"micro_raw": set()}


class MacroRawTest(_SkipsChecked, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["macro_raw"]
  SPLITS = {"train": 2}
  SKIPPED = {"macro_raw": {"s15/anger2_1", "s19/disgust2_1"}}


# ---- bad input: damaged copies of the dummy data, built into tmp_path ---------------------------

def _build(manual_dir: pathlib.Path, data_dir: pathlib.Path, config: str = "micro"):
  builder = casme_sq_dataset_builder.Builder(config=config, data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def test_built_records(tmp_path):
  builder = _build(DUMMY, tmp_path / "data")
  records = {r["sample_id"].decode(): r for r in tfds.as_numpy(builder.as_dataset(split="train"))}
  assert sorted(records) == ["s15/disgust1_3", "s15/happy1_2", "s19/happy4_1"]
  happy = records["s19/happy4_1"]  # its frame 2977 is named img2977.jpg.jpg
  assert list(happy["source_frames"]) == list(range(2974, 2981))
  assert (happy["onset"], happy["apex"], happy["offset"]) == (0, 3, 6)
  assert (happy["onset_frame"], happy["apex_frame"], happy["offset_frame"]) == (2974, 2977, 2980)
  assert happy["frames"].shape == (7, 128, 128, 3)
  assert happy["emotion"] == b"positive" and happy["three_class"] == b"positive"
  assert happy["action_units"] == b"L12" and happy["fps"] == 30.0
  assert happy["annotation"] == b"CAS(ME)^2code_final.xlsx row 3"
  skip = testing.skips(builder)["s19/anger1_2"]
  assert "cropped/19/anger1_2" in skip["reason"] and "does not exist" in skip["reason"]
  assert builder.info.metadata["counts"] == {"annotated": 4, "built": 3, "skipped": 1}


def test_offset_not_annotated_is_recorded(tmp_path):
  builder = _build(DUMMY, tmp_path / "data", "macro")
  skip = testing.skips(builder)["s15/anger2_1"]
  assert skip["file"] == "CAS(ME)^2code_final.xlsx row 6"
  assert skip["reason"].startswith("offset not annotated") and "offset -1" in skip["reason"]
  assert "apex 309 outside" in testing.skips(builder)["s19/disgust2_1"]["reason"]


def test_csv_export_is_read_when_no_workbook(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  import openpyxl
  book = openpyxl.load_workbook(manual / "CAS(ME)^2code_final.xlsx")
  lines = [",".join("" if v is None else str(v) for v in row)
           for row in book.worksheets[0].iter_rows(values_only=True)]
  (manual / "CAS(ME)^2code_final.xlsx").unlink()
  (manual / "CAS(ME)^2code_final(Updated).csv").write_text("\n".join(lines) + "\n")
  builder = _build(manual, tmp_path / "data")
  assert builder.info.splits["train"].num_examples == 3


def test_wrong_manual_dir_names_what_is_expected(tmp_path):
  # TFDS itself rejects a missing or empty manual_dir, quoting the instructions.
  with pytest.raises(AssertionError, match=r"does not exist or is empty(.|\n)*cropped/15/"):
    _build(tmp_path / "absent", tmp_path / "data")
  wrong = tmp_path / "wrong"
  (wrong / "rawvideo").mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match=r"no cropped/ folder(.|\n)*CAS\(ME\)\^2code_final"):
    _build(wrong, tmp_path / "data")
  (wrong / "cropped").mkdir()
  with pytest.raises(FileNotFoundError, match=r"no coding workbook"):
    _build(wrong, tmp_path / "data")


def test_missing_annotation_file(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  (manual / "CAS(ME)^2code_final.xlsx").unlink()
  with pytest.raises(FileNotFoundError, match=r"no coding workbook.*\*code_final\*\.xlsx"):
    _build(manual, tmp_path / "data")


def test_truncated_image_and_missing_frame_are_recorded_skips(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  truncated = manual / "cropped/15/disgust1_3/img1204.jpg"
  truncated.write_bytes(truncated.read_bytes()[:200])
  (manual / "cropped/15/happy1_2/img604.jpg").unlink()
  builder = _build(manual, tmp_path / "data")
  skips = testing.skips(builder)
  assert set(skips) == {"s15/disgust1_3", "s15/happy1_2", "s19/anger1_2"}
  assert "img1204.jpg" in skips["s15/disgust1_3"]["reason"]
  assert "truncated" in skips["s15/disgust1_3"]["reason"]
  assert "missing" in skips["s15/happy1_2"]["reason"] and "604" in skips["s15/happy1_2"]["reason"]
  assert skips["s15/happy1_2"]["file"] == "CAS(ME)^2code_final.xlsx row 2"
  assert builder.info.splits["train"].num_examples == 1


def test_row_pointing_at_absent_frames_is_recorded(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  for frame in (manual / "cropped/15/happy1_2").glob("img60[56].jpg"):
    frame.unlink()  # the row's offset 606 no longer exists
  skip = testing.skips(_build(manual, tmp_path / "data"))["s15/happy1_2"]
  assert "do not exist" in skip["reason"] and "601..604" in skip["reason"]


def test_building_twice_gives_identical_records(tmp_path):
  _build(DUMMY, tmp_path / "a")
  _build(DUMMY, tmp_path / "b")
  first = testing.tfrecord_bytes(tmp_path / "a")
  assert first and first == testing.tfrecord_bytes(tmp_path / "b")


def test_storage_options_derive_a_config_that_keeps_the_expression_type(tmp_path):
  builder = casme_sq_dataset_builder.Builder(config="macro", size=32, frame_range="whole",
                                             data_dir=str(tmp_path / "data"))
  assert builder.builder_config.name == "macro_s32_whole"
  assert builder.builder_config.expression_type == "macro"
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(DUMMY)))
  records = {r["sample_id"].decode(): r for r in tfds.as_numpy(builder.as_dataset(split="train"))}
  assert sorted(records) == ["s15/anger1_1", "s19/happy2_1"]
  assert records["s15/anger1_1"]["frames"].shape == (8, 32, 32, 3)
