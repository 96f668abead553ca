"""oulu_casia builder on its dummy data (tfds_builders/oulu_casia/make_dummy_data.py), and its
errors and skips on damaged copies of it."""

from __future__ import annotations

import pathlib

import pytest
import tensorflow_datasets as tfds

from tfds_builders import testing
from tfds_builders.oulu_casia import oulu_casia_dataset_builder

DUMMY = pathlib.Path(__file__).parent / "dummy_data"


class _SkipsChecked:
  """Mixin: every config of the dummy data builds 3 clips and skips P002/Surprise."""
  DATASET_CLASS = oulu_casia_dataset_builder.Builder
  SPLITS = {"train": 3}

  def _download_and_prepare_as_dataset(self, builder):
    super()._download_and_prepare_as_dataset(builder)
    skipped = {s["sample_id"]: s for s in builder.info.metadata["skipped"]}
    self.assertEqual(set(skipped), {"P002/Surprise"})
    self.assertIn("missing between 0 and 4: 2", skipped["P002/Surprise"]["reason"])


class CroppedTest(_SkipsChecked, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["vl_cropped", "ni_cropped"]


class RawTest(_SkipsChecked, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["vl_strong", "ni_strong"]


# ---- bad input: damaged copies of the dummy data, built into tmp_path ---------------------------

def _build(manual_dir: pathlib.Path, data_dir: pathlib.Path, config: str = "vl_cropped"):
  builder = oulu_casia_dataset_builder.Builder(config=config, data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def test_built_records(tmp_path):
  builder = _build(DUMMY, tmp_path / "data", "ni_cropped")
  records = {r["sample_id"].decode(): r for r in tfds.as_numpy(builder.as_dataset(split="train"))}
  assert sorted(records) == ["P001/Anger", "P001/Happiness", "P002/Disgust"]
  anger = records["P001/Anger"]
  assert list(anger["source_frames"]) == [0, 1, 2, 3, 4]
  assert (anger["onset"], anger["apex"], anger["offset"]) == (0, 4, 4)
  assert anger["emotion"] == b"anger" and anger["three_class"] == b"negative"
  assert anger["subject"] == b"P001" and anger["fps"] == 25.0
  assert anger["annotation"] == b"PreProcess/NI_Acropped/Strong/P001/Anger"
  frames = anger["frames"]
  assert frames.shape == (5, 128, 128, 3)
  # NI frames are grey: stored as RGB with equal channels (up to JPEG chroma noise).
  assert abs(frames[..., 0].astype(int) - frames[..., 2].astype(int)).max() <= 3


def test_wrong_manual_dir_lists_where_it_looked(tmp_path):
  wrong = tmp_path / "wrong"
  (wrong / "OriginalImg" / "VL" / "Strong").mkdir(parents=True)
  with pytest.raises(FileNotFoundError) as error:
    _build(wrong, tmp_path / "data", "vl_cropped")
  message = str(error.value)
  assert "PreProcess/VL_Acropped/Strong" in message and "VL_Acropped/Strong" in message
  assert "assumed to mirror OriginalImg" in message and "P001/Anger/000.jpeg" in message
  with pytest.raises(FileNotFoundError, match="OriginalImg/NI/Dark"):
    _build(DUMMY, tmp_path / "data", "ni_dark")


def test_unreadable_image_and_missing_frames_are_recorded_skips(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  clips = manual / "PreProcess/VL_Acropped/Strong"
  truncated = clips / "P001/Anger/003.jpeg"
  truncated.write_bytes(truncated.read_bytes()[:150])
  (clips / "P001/Happiness/000.jpeg").write_bytes(b"not a jpeg")
  builder = _build(manual, tmp_path / "data")
  skips = testing.skips(builder)
  assert set(skips) == {"P001/Anger", "P001/Happiness", "P002/Surprise"}
  anger = skips["P001/Anger"]["reason"]
  assert "003.jpeg" in anger and "truncated" in anger
  assert "000.jpeg" in skips["P001/Happiness"]["reason"]
  assert skips["P001/Happiness"]["file"] == "PreProcess/VL_Acropped/Strong/P001/Happiness"
  assert builder.info.splits["train"].num_examples == 1


def test_empty_and_foreign_folders_are_recorded_skips(tmp_path):
  manual = testing.copy_dummy(DUMMY, tmp_path)
  clips = manual / "PreProcess/VL_Acropped/Strong"
  (clips / "P002/Fear").mkdir()
  (clips / "P002/Thumbs").mkdir()
  skips = testing.skips(_build(manual, tmp_path / "data"))
  assert "no frames" in skips["P002/Fear"]["reason"]
  assert "not an expression folder" in skips["P002/Thumbs"]["reason"]


def test_building_twice_gives_identical_records(tmp_path):
  _build(DUMMY, tmp_path / "a")
  _build(DUMMY, tmp_path / "b")
  first = testing.tfrecord_bytes(tmp_path / "a")
  assert first and first == testing.tfrecord_bytes(tmp_path / "b")
