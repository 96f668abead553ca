"""mug builder on its dummy data (tfds_builders/mug/make_dummy_data.py)."""

from __future__ import annotations

import tensorflow_datasets as tfds

from tfds_builders.mug import mug_dataset_builder


class MugTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = mug_dataset_builder.Builder
  SPLITS = {"train": 4}  # 002/session2/sadness/take000 lacks a frame

  def _download_and_prepare_as_dataset(self, builder):
    super()._download_and_prepare_as_dataset(builder)
    skipped = {s["sample_id"]: s for s in builder.info.metadata["skipped"]}
    self.assertEqual(set(skipped), {"002/session2/sadness/take000"})
    self.assertIn("missing between 1 and 5: 3", skipped["002/session2/sadness/take000"]["reason"])
    records = {r["sample_id"].decode(): r
               for r in tfds.as_numpy(builder.as_dataset(split="train"))}
    self.assertEqual(sorted(records), ["001/anger/take000", "001/happiness/take001",
                                       "002/session1/neutral/take002end",
                                       "002/session1/surprise/take003"])
    happy = records["001/happiness/take001"]  # numbered from img_0012
    self.assertEqual(list(happy["source_frames"]), [12, 13, 14, 15, 16])
    self.assertEqual((happy["onset"], happy["apex"], happy["offset"]), (0, -1, 4))
    self.assertEqual(happy["subject"], b"001")
    self.assertAlmostEqual(float(happy["fps"]), 19.0)
