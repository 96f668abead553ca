"""python -m mejax.predict: a run's models on a built dataset, a folder of frames and a video.

The tiny run's models barely depend on their input (2 epochs of a 1/32-wide model: the clips of
one fold differ by ~1e-6 in probability, the folds by ~1e-2), so probabilities prove which model
ran, and the views (uint8, compared exactly) prove which input it got.
"""

import csv
import os
import pathlib
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mejax import predict
from mejax import reports
from mejax import runs
from mejax.data import schema
from mejax.preprocess import frames as frames_lib
from mejax.synthetic import generate

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATASET = "synthetic_me/micro_tiny"
CLIP = "S02_01"                      # a clip of the dataset, rendered again as files
FOLD = "loso:synthetic_me/S02"       # the fold whose test set holds it


def _read_csv(path) -> list[dict]:
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _listing(folder: pathlib.Path) -> list[tuple]:
  return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                for p in folder.rglob("*"))


def _probabilities(row: dict, class_names) -> np.ndarray:
  return np.asarray([float(row[f"p_{c}"]) for c in class_names])


@pytest.fixture(scope="module")
def run(tiny_run):
  return runs.load(tiny_run[1])


@pytest.fixture(scope="module")
def workdir_copy(tiny_run, tmp_path_factory):
  """A copy of the tiny run's workdir for tests that write into a workdir or damage it."""
  copy = tmp_path_factory.mktemp("predict") / "run"
  shutil.copytree(tiny_run[1], copy)
  return copy


@pytest.fixture(scope="module")
def dataset_clips(run, tiny_data_dir):
  return predict.dataset_clips(run, DATASET, tiny_data_dir)


@pytest.fixture(scope="module")
def stored_clip():
  """(frames, (onset, apex, offset)) of CLIP as the builder stored it (PNG is lossless)."""
  config = generate.PRESETS["micro_tiny"]
  plan = next(p for p in generate.plan_dataset(config) if p.sample_id == CLIP)
  sample = generate.sample_from_plan(plan, config)
  return sample[schema.FRAMES], (sample[schema.ONSET], sample[schema.APEX], sample[schema.OFFSET])


def _write_frames(folder: pathlib.Path, frames: np.ndarray, name: str = "img{:03d}.png",
                  first: int = 1) -> pathlib.Path:
  """Numbered image files; RGB(A) frames are written as OpenCV's BGR(A), (H, W) as grey."""
  folder.mkdir(parents=True)
  for i, frame in enumerate(frames):
    if frame.ndim == 3 and frame.shape[2] == 3:
      frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    elif frame.ndim == 3 and frame.shape[2] == 4:
      frame = cv2.cvtColor(frame, cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(folder / name.format(first + i)), frame)
  return folder


@pytest.fixture(scope="module")
def frames_folder(stored_clip, tmp_path_factory):
  """CLIP's stored frames as img001.png ... (frame number = stored index + 1)."""
  frames, _ = stored_clip
  return _write_frames(tmp_path_factory.mktemp("frames") / "clip S02_01", frames)


def _timing_flags(stored_clip) -> list[str]:
  onset, apex, offset = stored_clip[1]
  return ["--onset", str(onset + 1), "--apex", str(apex + 1), "--offset", str(offset + 1)]


def _cli(args, timeout=300) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)  # one CPU device: a faster start, and any device count restores
  return subprocess.run([sys.executable, "-m", "mejax.predict", *map(str, args)], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=timeout)


# ---- a built dataset -----------------------------------------------------------------------------

def test_one_fold_on_the_dataset_is_the_runs_own_prediction(tiny_run, run, tmp_path, capsys):
  workdir = tiny_run[1]
  before = _listing(workdir)
  out = tmp_path / "fold.csv"
  assert predict.main(["--workdir", str(workdir), DATASET, "--fold", FOLD, "--out",
                       str(out)]) == 0
  printed = capsys.readouterr().out
  assert f"the model of fold {FOLD}" in printed and f"wrote {out}" in printed
  rows = {r["sample_id"]: r for r in _read_csv(out)}
  reported = {r["sample_id"]: r for r in _read_csv(workdir / "predictions.csv")}
  assert set(rows) == set(reported)  # every clip of the dataset, the fold's test set and others
  test_ids = [s for s, r in reported.items() if r["fold"] == FOLD]
  assert test_ids and f"synthetic_me/{CLIP}" in test_ids
  for sample_id in test_ids:  # the same model, view and input transform as training's evaluation
    row = rows[sample_id]
    np.testing.assert_allclose(_probabilities(row, run.class_names),
                               _probabilities(reported[sample_id], run.class_names), atol=2e-4)
    assert row["prediction"] == reported[sample_id]["prediction"]
    assert row["fold"] == FOLD and row["seen_in_training"] == "0"
  for sample_id, row in rows.items():
    assert row["label"] == reported[sample_id]["label"]
    if sample_id not in test_ids:  # the fold's model trained on every other clip
      assert row["seen_in_training"] == "1"
      # Another fold's model gave other numbers: the comparison above tells models apart.
      assert np.abs(_probabilities(row, run.class_names)
                    - _probabilities(reported[sample_id], run.class_names)).max() > 2e-4
  assert _listing(workdir) == before


def test_dataset_view_is_the_runs_view(run, dataset_clips, tiny_data_dir):
  _, view = run.data(tiny_data_dir)  # the view training cached
  uid = [str(u) for u in run.folds.sample_ids]
  order = [dataset_clips.sample_ids.index(u) for u in uid]
  np.testing.assert_array_equal(dataset_clips.views[order], view)
  assert dataset_clips.fold_index.tolist() == [uid.index(s) for s in dataset_clips.sample_ids]


def test_clips_the_label_map_drops_are_predicted_unlabelled(run):
  config = generate.PRESETS["micro_tiny"]
  records = [generate.sample_from_plan(plan, config) for plan in generate.plan_dataset(config)[:2]]
  records[1] = dict(records[1], **{schema.EMOTION: "others"})  # no class under megc2019
  clips = predict.clips_from_records(records, DATASET, run.config.data)
  assert clips.labels[0] in run.class_names and clips.labels[1] == ""
  assert clips.views.shape == (2,) + run.input_shape
  assert any("no class" in note for note in clips.notes)
  prediction = predict.predict(run, clips)
  assert prediction.probabilities.shape == (2, run.num_classes)
  assert prediction.seen_in_training is None  # unknown for clips not of the run's data
  csv_text = predict.predictions_csv(run, clips, prediction, single_fold=False)
  assert csv_text.splitlines()[2].split(",")[1] == ""


# ---- a folder of frames --------------------------------------------------------------------------

def test_folder_of_frames_cli_averages_every_fold(run, workdir_copy, frames_folder, stored_clip):
  before = _listing(workdir_copy)
  result = _cli(["--workdir", workdir_copy, frames_folder, *_timing_flags(stored_clip)])
  assert result.returncode == 0, result.stderr
  out = workdir_copy / "predict" / "clip_S02_01.csv"  # the default: a new subfolder
  assert f"wrote {out}" in result.stdout
  assert "sample_id" in result.stdout and str(frames_folder) in result.stdout
  assert "not a test figure" in result.stdout  # what the mean of the folds means
  # Only the new CSV was added to the workdir; nothing else in it changed.
  added = lambda entry: entry[0] == "predict" or entry[0].startswith("predict/")
  after = _listing(workdir_copy)
  assert [e for e in after if not added(e)] == before
  assert [e[0] for e in after if added(e)] == ["predict", "predict/clip_S02_01.csv"]
  (row,) = _read_csv(out)
  probabilities = _probabilities(row, run.class_names)
  assert abs(probabilities.sum() - 1) < 1e-5
  assert row["folds_averaged"] == str(len(run.fold_names)) == "6"
  assert "label" not in row and row["sample_id"] == str(frames_folder)
  # The mean over every fold's model of its class probabilities, on the builders' face crop.
  onset, apex, offset = (int(v) for v in _timing_flags(stored_clip)[1::2])
  clips = predict.file_clips(run, frames_folder, onset=onset, apex=apex, offset=offset,
                             pattern=predict.DEFAULT_PATTERN, crop="face", size=128)
  per_fold = [reports.softmax(run.apply(f, clips.views)[0])[0] for f in run.fold_names]
  np.testing.assert_allclose(probabilities, np.mean(per_fold, axis=0), atol=2e-6)
  assert np.ptp(per_fold, axis=0).max() > 1e-2  # the folds' models disagree: a real mean

  # Run again: the CSV is not overwritten without --overwrite, and is with it.
  stamp = _listing(workdir_copy)
  assert predict.main(["--workdir", str(workdir_copy), str(frames_folder),
                       *_timing_flags(stored_clip)]) == 2
  assert _listing(workdir_copy) == stamp
  assert predict.main(["--workdir", str(workdir_copy), str(frames_folder), "--overwrite",
                       *_timing_flags(stored_clip)]) == 0
  assert _read_csv(out) == [row]


def test_cropped_frames_are_the_dataset_clip(run, dataset_clips, frames_folder, stored_clip,
                                             tmp_path):
  # The stored (already cropped) frames with --crop none at the stored size give exactly the
  # dataset clip's view, hence its prediction.
  onset, apex, offset = (int(v) for v in _timing_flags(stored_clip)[1::2])
  clips = predict.file_clips(run, frames_folder, onset=onset, apex=apex, offset=offset,
                             pattern=predict.DEFAULT_PATTERN, crop="none", size=64)
  index = dataset_clips.sample_ids.index(f"synthetic_me/{CLIP}")
  np.testing.assert_array_equal(clips.views[0], dataset_clips.views[index])
  out = tmp_path / "p.csv"
  assert predict.main(["--workdir", str(run.workdir), str(frames_folder), "--crop", "none",
                       "--size", "64", "--fold", FOLD, "--out", str(out),
                       *_timing_flags(stored_clip)]) == 0
  (row,) = _read_csv(out)
  expected = reports.softmax(run.apply(FOLD, dataset_clips.views[index:index + 1])[0])[0]
  np.testing.assert_allclose(_probabilities(row, run.class_names), expected, atol=1e-6)
  assert row["fold"] == FOLD


@pytest.mark.parametrize("kind", ["rgba", "grey", "other_size"])
def test_frames_of_other_channels_and_sizes(run, stored_clip, tmp_path, kind):
  frames, (onset, apex, offset) = stored_clip
  if kind == "rgba":  # alpha is dropped: the same view as the RGB frames
    written = np.concatenate([frames, np.full(frames.shape[:3] + (1,), 200, np.uint8)], -1)
    expected_frames = frames
  elif kind == "grey":  # grey frames become RGB with equal channels
    written = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    expected_frames = np.repeat(written[..., None], 3, axis=-1)
  else:  # non-square frames are resized to the stored size, like a cropped release's
    written = np.stack([cv2.resize(f, (48, 80), interpolation=cv2.INTER_AREA) for f in frames])
    expected_frames = frames_lib.resize_frames(written, 64)
    assert expected_frames.shape[1:] == (64, 64, 3)
  folder = _write_frames(tmp_path / kind, written, name="frame_{}.png", first=0)
  clips = predict.file_clips(run, folder, onset=onset, apex=apex, offset=offset,
                             pattern=predict.DEFAULT_PATTERN, crop="none", size=64)
  assert clips.views.shape == (1,) + run.input_shape
  expected = predict.views.clip_view(expected_frames[onset:offset + 1],
                                     0, apex - onset, offset - onset, run.config.data)
  np.testing.assert_array_equal(clips.views[0], expected)
  if kind == "grey":
    assert (clips.views[..., 0] == clips.views[..., 2]).all()


def test_default_pattern_reads_common_frame_names():
  pattern = re.compile(predict.DEFAULT_PATTERN, re.IGNORECASE)  # as numbered_frames uses it
  for name, number in (("img001.jpg", 1), ("0001.png", 1), ("frame_12.jpg", 12),
                       ("reg_img46.JPG", 46), ("cam2_0007.bmp", 7), ("12.jpeg", 12)):
    assert int(pattern.fullmatch(name).group("n")) == number, name
  for name in ("Thumbs.db", "notes.txt", "img.png", "img001.png.bak"):
    assert pattern.fullmatch(name) is None, name


def test_default_csv_is_a_new_file_in_the_workdirs_predict_folder(tmp_path):
  assert predict.default_out(tmp_path, "synthetic_me/micro_tiny", None) == (
      tmp_path / "predict" / "synthetic_me_micro_tiny.csv")
  assert predict.default_out(tmp_path, "clip 01", FOLD) == (
      tmp_path / "predict" / "clip_01.loso_synthetic_me_S02.csv")


def test_a_view_of_the_wrong_shape_is_refused_with_shapes(run):
  clips = predict.Clips(name="x", sample_ids=["x"], views=np.zeros((1, 4, 8, 8, 3), np.uint8),
                        labels=None)
  with pytest.raises(runs.RunError, match=r"\(1, 4, 8, 8, 3\).*\(N, 4, 16, 16, 3\)"):
    predict.predict(run, clips)


# ---- a video ------------------------------------------------------------------------------------

def test_video(run, stored_clip, tmp_path, capsys):
  frames, (onset, apex, offset) = stored_clip
  video = tmp_path / "clip.avi"
  writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0,
                           frames.shape[2:0:-1])
  assert writer.isOpened()
  for frame in frames:
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  writer.release()
  out = tmp_path / "video.csv"
  assert predict.main(["--workdir", str(run.workdir), str(video), "--onset", str(onset),
                       "--apex", str(apex), "--offset", str(offset), "--out", str(out)]) == 0
  (row,) = _read_csv(out)
  assert row["sample_id"] == str(video) and row["folds_averaged"] == "6"
  assert abs(_probabilities(row, run.class_names).sum() - 1) < 1e-5
  printed = capsys.readouterr().out
  assert f"frames {onset}..{offset}, apex {apex}" in printed
  # Frame indices are 0-based: the whole video is 0..len-1 and nothing beyond.
  assert predict.main(["--workdir", str(run.workdir), str(video), "--offset", str(len(frames)),
                       "--out", str(tmp_path / "beyond.csv")]) == 2
  assert f"outside its frames 0..{len(frames) - 1}" in capsys.readouterr().err
  assert not (tmp_path / "beyond.csv").exists()


def test_undecodable_video_cli(run, tmp_path):
  video = tmp_path / "broken.mp4"
  video.write_bytes(b"not a video " * 100)
  result = _cli(["--workdir", run.workdir, video, "--out", tmp_path / "p.csv"])
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"error: {video}: not a video OpenCV can decode"]
  assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


# ---- bad input ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_workdirs(tiny_run, tmp_path_factory):
  root = tmp_path_factory.mktemp("bad_workdirs")
  (root / "no_checkpoint" / "checkpoints").mkdir(parents=True)
  old = root / "old_format"
  shutil.copytree(tiny_run[1], old)
  for metadata in (old / "checkpoints").glob("*/experiment/metadata"):
    metadata.write_text(metadata.read_text().replace('"format": 2,', '"format": 99,', 1))
  return root


def test_bad_input_is_refused_in_one_line_and_nothing_changes(
    workdir_copy, bad_workdirs, frames_folder, tmp_path, capsys, tiny_data_dir):
  workdir = str(workdir_copy)
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / "notes.txt").write_text("no frames here")
  no_face = _write_frames(tmp_path / "no_face", np.full((6, 64, 64, 3), 90, np.uint8))
  mixed = _write_frames(tmp_path / "mixed", np.zeros((3, 64, 64, 3), np.uint8))
  cv2.imwrite(str(mixed / "img002.png"), np.zeros((32, 32, 3), np.uint8))
  cases = {
      "unknown fold": ([DATASET, "--fold", "S99"],
                       ["no fold 'S99'", "loso:synthetic_me/S01", "loso:synthetic_me/S06"]),
      "no checkpoint": ([DATASET, "--workdir", str(bad_workdirs / "no_checkpoint")],
                        [str(bad_workdirs / "no_checkpoint"), "no checkpoint"]),
      "no run": ([DATASET, "--workdir", str(tmp_path / "nowhere")], ["not a mejax run"]),
      "other mejax version": ([DATASET, "--workdir", str(bad_workdirs / "old_format")],
                              ["checkpoint format 99", "old_format"]),
      "offset beyond the frames": ([str(frames_folder), "--onset", "4", "--offset", "999"],
                                   [str(frames_folder), "[999]", "frames 1.."]),
      "apex outside onset..offset": ([str(frames_folder), "--onset", "10", "--apex", "5",
                                      "--offset", "20"], ["out of order"]),
      "onset after offset": ([str(frames_folder), "--onset", "20", "--offset", "10"],
                             ["out of order"]),
      "no frames": ([str(empty)], [str(empty), "no frame files matching"]),
      "one image": ([str(frames_folder / "img001.png")], ["one image is not a clip"]),
      "no face": ([str(no_face)], ["no frontal face", "--crop none"]),
      "frames of two sizes": ([str(mixed), "--crop", "none"], ["differ in size", "(64, 64)"]),
      "dataset not built": (["synthetic_me/micro"], ["synthetic_me/micro", tiny_data_dir]),
      "frame flags on a dataset": ([DATASET, "--onset", "3"], ["--onset only apply"]),
      "bad pattern": ([str(frames_folder), "--pattern", r"img(\d+)\.png"], ["(?P<n>"]),
  }
  out = tmp_path / "out" / "p.csv"  # for frames: the workdir already holds their default CSV
  before = _listing(workdir_copy), _listing(bad_workdirs)
  for case, (args, expected) in cases.items():
    if "--workdir" not in args:
      args = args + ["--workdir", workdir]
    if args[0] != DATASET:  # the dataset cases write (nothing) to WORKDIR/predict by default
      args = args + ["--out", str(out)]
    assert predict.main(args) == 2, case
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, captured.err)
    for text in expected:
      assert text in lines[0], (case, lines[0])
    assert "Traceback" not in captured.err and not captured.out, case
  assert (_listing(workdir_copy), _listing(bad_workdirs)) == before
  assert not (tmp_path / "nowhere").exists() and not out.parent.exists()
