"""A licensed dataset's folder -> TFRecords -> ClipSet -> training, as a user runs it.

Runs on the committed fake CASME II layout (tfds_builders/casme2/dummy_data): the project's
prepare command with a manual dir and storage options, the dataset loaded with its builder skips
carried into the ClipSet, and a LOSO run of `mejax.main` on it.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CASME2_DUMMY = ROOT / "tfds_builders" / "casme2" / "dummy_data"
DATASET = "casme2/cropped/size=32,frame_range=whole"


def _run(args, **kw):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900, **kw)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  out = _run(["-m", "mejax.prepare", DATASET, "--manual_dir", f"casme2={CASME2_DUMMY}",
              "--data_dir", str(data_dir)])
  assert "5 clips" in out.stdout and "1 skipped" in out.stdout
  return data_dir


def test_prepare_stores_the_derived_config_with_its_options(data_dir):
  version_dir = data_dir / "casme2" / "cropped_s32_whole" / "1.0.0"
  metadata = json.loads((version_dir / "metadata.json").read_text())
  assert metadata["counts"] == {"annotated": 6, "built": 5, "skipped": 1}
  (skip,) = metadata["skipped"]
  assert skip["sample_id"] == "sub04/EP12_01f" and "apex not annotated" in skip["reason"]
  assert skip["file"] == "CASME2-coding-20140508.xlsx row 6"


def test_clipset_carries_frames_metadata_and_builder_skips(data_dir):
  from mejax.data import clipset
  clips = clipset.load([DATASET], str(data_dir), "megc2019")
  # 'others' has no MEGC2019 class; the apex '/' row never became a record.
  assert sorted(clips.sample_id.tolist()) == ["sub01/EP02_01f", "sub02/EP06_01f",
                                              "sub02/EP09_05f", "sub04/EP13_04"]
  reasons = {d["sample_id"]: d["reason"] for d in clips.dropped}
  assert reasons["sub01/EP03_02"] == "emotion 'others' not in label map 'megc2019'"
  assert reasons["sub04/EP12_01f"].startswith("not built (CASME2-coding-20140508.xlsx row 6)")
  index = clips.sample_id.tolist().index("sub01/EP02_01f")
  frames = clips.frames[index]
  assert frames.shape[1:] == (32, 32, 3) and frames.dtype == np.uint8
  # frame_range=whole keeps the clip folder; onset/apex/offset index into it (sheet: 3/5/7).
  assert len(frames) > clips.offset[index] >= clips.apex[index] > clips.onset[index] >= 0
  assert clips.subject[index] == "sub01" and clips.fps[index] == 200.0


def test_main_trains_loso_on_the_built_dataset(data_dir, tmp_path):
  workdir = tmp_path / "run"
  _run(["-m", "mejax.main", "--config", "tests/tiny_config.py", "--workdir", str(workdir),
        f"--config.data.data_dir={data_dir}", f"--config.data.datasets=('{DATASET}',)",
        "--config.data.num_frames=4"])
  metrics = json.loads((workdir / "metrics.json").read_text())
  folds = json.loads((workdir / "folds.json").read_text())
  assert len(folds["folds"]) == 3  # one per subject: sub01, sub02, sub04
  lines = (workdir / "predictions.csv").read_text().splitlines()
  assert len(lines) == 1 + 4 and all(",casme2," in line for line in lines[1:])
  assert 0.0 <= metrics["report"]["pooled"]["uar"] <= 1.0
  # What never reached training is stored with the run, the builder's skip included.
  skipped = (workdir / "skipped_samples.json").read_text()
  assert "sub04/EP12_01f" in skipped and "apex not annotated" in skipped
  assert "sub01/EP03_02" in skipped


def test_tfds_build_command_builds_from_a_manual_dir(tmp_path):
  # TFDS's own `build` subcommand and flags (what `tfds build` runs), on the fake MUG layout.
  _run(["-m", "mejax.tfds_build", "tfds_builders/mug", "--manual_dir",
        str(ROOT / "tfds_builders" / "mug" / "dummy_data"), "--data_dir", str(tmp_path)])
  info = json.loads((tmp_path / "mug" / "default" / "1.0.0" / "dataset_info.json").read_text())
  assert int(info["splits"][0]["shardLengths"][0]) > 0
  result = subprocess.run([sys.executable, "-m", "mejax.tfds_build", "tfds_builders/mug",
                           "--manual_dir", str(tmp_path / "nowhere"), "--data_dir",
                           str(tmp_path / "other")], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode != 0 and "subjects3" in result.stderr  # the instructions say what
