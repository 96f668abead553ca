"""ckplus builder on its dummy data (tfds_builders/ckplus/make_dummy_data.py)."""

from __future__ import annotations

import tensorflow_datasets as tfds

from tfds_builders.ckplus import ckplus_dataset_builder


class CkplusTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = ckplus_dataset_builder.Builder
  # S005/001, S010/002, S011/002; S005/002 and S010/001 are unlabelled (empty Emotion folders)
  SPLITS = {"train": 3}

  def _download_and_prepare_as_dataset(self, builder):
    super()._download_and_prepare_as_dataset(builder)
    skipped = {s["sample_id"]: s for s in builder.info.metadata["skipped"]}
    self.assertEqual(set(skipped), {"S011/001", "S010/003"})
    self.assertEqual(skipped["S011/001"]["file"],
                     "Emotion/S011/001/S011_001_00000005_emotion.txt")
    self.assertIn("emotion code", skipped["S011/001"]["reason"])
    self.assertIn("S010_003_", skipped["S010/003"]["reason"] + skipped["S010/003"]["file"])
    self.assertIn("missing between 1 and 5: 3", skipped["S010/003"]["reason"])
    records = {r["sample_id"].decode(): r
               for r in tfds.as_numpy(builder.as_dataset(split="train"))}
    disgust = records["S005/001"]
    self.assertEqual(disgust["emotion"], b"disgust")
    self.assertEqual(disgust["action_units"], b"9+17")
    self.assertEqual(list(disgust["source_frames"]), [1, 2, 3, 4, 5])
    self.assertEqual((disgust["onset"], disgust["apex"], disgust["offset"]), (0, 4, 4))
    self.assertEqual(disgust["frames"].shape, (5, 128, 128, 3))
