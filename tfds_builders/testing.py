"""Helpers of the builder tests: build a dataset from a manual dir into a temporary data dir,
read back its records and recorded skips, damage a copy of the dummy data, compare two builds."""

from __future__ import annotations

import pathlib
import shutil

import tensorflow_datasets as tfds


def prepare(builder, manual_dir: str | pathlib.Path):
  """Builds `builder` from `manual_dir` (statistics skipped: the tests do not need them)."""
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual_dir), compute_stats=tfds.download.ComputeStatsMode.SKIP))
  return builder


def records(builder) -> dict[str, dict]:
  """{sample_id: record} of a built dataset."""
  return {ex["sample_id"].decode(): ex
          for ex in tfds.as_numpy(builder.as_dataset(split="train"))}


def skips(builder) -> dict[str, dict]:
  """{sample_id: skip} of the samples the build recorded as skipped."""
  return {s["sample_id"]: s for s in builder.info.metadata["skipped"]}


def copy_dummy(dummy: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
  """A copy of a builder's dummy_data to damage."""
  manual = tmp_path / "manual"
  shutil.copytree(dummy, manual)
  return manual


def tfrecord_bytes(data_dir: pathlib.Path) -> dict[str, bytes]:
  """{path relative to data_dir: content} of every TFRecord file of a build."""
  return {p.relative_to(data_dir).as_posix(): p.read_bytes()
          for p in sorted(data_dir.rglob("*.tfrecord*"))}


def assert_dummy_data_reproducible(make_dummy_data, dummy: pathlib.Path,
                                   tmp_path: pathlib.Path, monkeypatch) -> None:
  """Regenerating a builder's dummy data (its make_dummy_data module) writes the shipped files."""
  monkeypatch.setattr(make_dummy_data, "HERE", tmp_path)
  make_dummy_data.main()
  written_dir = tmp_path / "dummy_data"
  written = sorted(p.relative_to(written_dir) for p in written_dir.rglob("*") if p.is_file())
  shipped = sorted(p.relative_to(dummy) for p in dummy.rglob("*") if p.is_file())
  assert written == shipped
  for relative in written:
    assert (written_dir / relative).read_bytes() == (dummy / relative).read_bytes(), relative
