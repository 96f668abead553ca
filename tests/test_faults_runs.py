"""Faults injected into training runs: damaged checkpoints and results, a busy or foreign
workdir, impossible settings, a full disk, resumes. Each case asserts the message a user sees and
that results already written are byte-identical, or equal to an uninterrupted run's.

Every run is the tiny end-to-end config of tests/test_train.py on 8 fake CPU devices.
"""

import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from mejax import checkpoints
from mejax import files
from mejax import train

from test_train import REPO, tiny_config


def snapshot(directory: pathlib.Path) -> dict:
  return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
          if p.is_file()}


def results(workdir: pathlib.Path) -> tuple[bytes, dict]:
  """predictions.csv's bytes and metrics.json (what an identical run reproduces)."""
  return ((workdir / "predictions.csv").read_bytes(),
          json.loads((workdir / "metrics.json").read_text()))


@pytest.fixture(scope="module")
def reference(tiny_data_dir, tmp_path_factory):
  """(config, workdir) of one uninterrupted 3-epoch run; copies of it are damaged below."""
  workdir = tmp_path_factory.mktemp("reference")
  config = tiny_config(tiny_data_dir, **{"train.num_epochs": 3})
  train.train_and_evaluate(config, str(workdir))
  return config, workdir


def unfinished_copy(reference, tmp_path) -> pathlib.Path:
  """The reference run as if killed after its last checkpoint (epochs 2 and 3 kept)."""
  _, workdir = reference
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)
  for name in ("metrics.json", "predictions.csv"):
    (copy / name).unlink()
  return copy


def truncate(path: pathlib.Path, keep: float = 0.5) -> None:
  data = path.read_bytes()
  path.write_bytes(data[:int(len(data) * keep)])


def largest_state_file(checkpoint: pathlib.Path) -> pathlib.Path:
  return max((p for p in (checkpoint / "state").rglob("*") if p.is_file()),
             key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("damage", ["experiment json truncated", "history json garbled",
                                    "state file truncated"])
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_resumes(
    reference, tmp_path, caplog, damage):
  config, workdir = reference
  run = unfinished_copy(reference, tmp_path)
  newest = run / "checkpoints" / "3"
  if damage == "experiment json truncated":
    truncate(newest / "experiment" / "metadata")
  elif damage == "history json garbled":
    (newest / "history" / "metadata").write_bytes(b"\x00garbage{{{")
  else:
    truncate(largest_state_file(newest), 0.3)
  damaged_bytes = snapshot(newest)
  train.train_and_evaluate(config, str(run))
  assert f"Checkpoint {newest} is damaged" in caplog.text
  assert "Resuming from epoch 2, the newest intact checkpoint" in caplog.text
  assert snapshot(run / "checkpoints" / "damaged-3") == damaged_bytes  # kept, not deleted
  assert results(run) == results(workdir)


def test_no_intact_checkpoint_starts_fresh_and_says_so(reference, tmp_path, caplog):
  config, workdir = reference
  run = unfinished_copy(reference, tmp_path)
  for epoch in ("2", "3"):
    (run / "checkpoints" / epoch / "experiment" / "metadata").write_text("{")
  train.train_and_evaluate(config, str(run))
  assert "No intact checkpoint" in caplog.text and "starts from the beginning" in caplog.text
  assert results(run) == results(workdir)


@pytest.mark.parametrize("name", ["metrics.json", "predictions.csv"])
def test_damaged_results_of_a_finished_run_are_recomputed(reference, tmp_path, caplog, name):
  config, workdir = reference
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  truncate(run / name, 0.4)
  report = train.train_and_evaluate(config, str(run))
  assert "is damaged: recomputing the results from the last checkpoint" in caplog.text
  assert results(run) == results(workdir)
  assert report == results(workdir)[1]["report"]


def test_a_second_run_in_a_busy_workdir_is_refused_and_a_killed_runs_lock_is_not(
    reference, tmp_path):
  """The lock is an flock: a live holder refuses others, naming its process; once the holder
  is killed (-9), the same command resumes."""
  config, _ = reference
  run = tmp_path / "run"
  holder = subprocess.Popen(
      [sys.executable, "-c", textwrap.dedent(f"""
          import pathlib, sys, time
          from mejax import checkpoints
          with checkpoints.locked(pathlib.Path({str(run)!r})):
            print("locked", flush=True)
            time.sleep(600)
          """)], cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(checkpoints.WorkdirBusy,
                       match=rf"{run} is in use by another run \(process {holder.pid} on "):
      train.train_and_evaluate(config, str(run))
    assert not (run / "config.json").exists()
  finally:
    holder.kill()
    holder.wait()
  train.train_and_evaluate(config, str(run))
  assert (run / "metrics.json").exists()


def test_a_deleted_config_json_is_checked_against_the_checkpoints(reference, tmp_path):
  config, workdir = reference
  run = unfinished_copy(reference, tmp_path)
  (run / "config.json").unlink()
  other = tiny_config(config.data.data_dir, **{"train.num_epochs": 3,
                                               "train.learning_rate": 0.5})
  before = snapshot(run)
  with pytest.raises(ValueError, match=rf"holds a different experiment \(read from "
                                       rf"{run / 'checkpoints' / '3'}\).*train.learning_rate"):
    train.train_and_evaluate(other, str(run))
  assert snapshot(run) == before
  train.train_and_evaluate(config, str(run))  # the same experiment resumes, config.json rewritten
  assert json.loads((run / "config.json").read_text()) == json.loads(
      (workdir / "config.json").read_text())
  assert results(run) == results(workdir)


@pytest.mark.parametrize("damage", ["a file", "emptied", "state removed"])
def test_an_incomplete_checkpoint_folder_is_set_aside(reference, tmp_path, caplog, damage):
  config, workdir = reference
  run = unfinished_copy(reference, tmp_path)
  newest = run / "checkpoints" / "3"
  if damage == "a file":
    shutil.rmtree(newest)
    newest.write_text("junk")
  elif damage == "emptied":
    for entry in newest.iterdir():
      shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
  else:
    shutil.rmtree(newest / "state")
  damaged_bytes = snapshot(newest) if newest.is_dir() else newest.read_bytes()
  train.train_and_evaluate(config, str(run))
  assert f"Checkpoint {newest} is incomplete" in caplog.text
  aside = run / "checkpoints" / "damaged-3"
  assert (snapshot(aside) if aside.is_dir() else aside.read_bytes()) == damaged_bytes
  assert results(run) == results(workdir)


@pytest.mark.parametrize("target, kind", [(".", "file"), ("predictions.csv", "folder"),
                                          ("checkpoints", "file")])
def test_a_file_and_a_folder_in_each_others_place_are_refused_at_once(reference, tmp_path,
                                                                       target, kind):
  config, workdir = reference
  run = tmp_path / "run"
  if target == ".":
    run.write_text("not a workdir")
  else:
    shutil.copytree(workdir, run)
    path = run / target
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.mkdir() if kind == "folder" else path.write_text("x")
  before = snapshot(run) if run.is_dir() else run.read_bytes()
  with pytest.raises(ValueError, match=f"is a {kind}"):
    train.train_and_evaluate(config, str(run))
  assert (snapshot(run) if run.is_dir() else run.read_bytes()) == before


def test_a_damaged_config_json_of_a_finished_run_is_rewritten(reference, tmp_path, caplog):
  config, workdir = reference
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  (run / "config.json").write_bytes(os.urandom(300))
  assert train.train_and_evaluate(config, str(run)) == results(workdir)[1]["report"]
  assert "was missing or damaged; rewritten" in caplog.text
  assert (run / "config.json").read_bytes() == (workdir / "config.json").read_bytes()


def test_a_numbered_folder_of_another_tool_is_refused(reference, tmp_path):
  config, _ = reference
  run = unfinished_copy(reference, tmp_path)
  (run / "checkpoints" / "7" / "weights").mkdir(parents=True)
  before = snapshot(run)
  with pytest.raises(ValueError, match=rf"{run / 'checkpoints' / '7'} is not a mejax checkpoint"
                                       r".*move it out of"):
    train.train_and_evaluate(config, str(run))
  assert snapshot(run) == before


def test_errors_found_before_training_leave_no_workdir_and_a_never_trained_one_is_reclaimed(
    tiny_data_dir, tmp_path):
  unbuilt = tiny_config(str(tmp_path / "no_data"), **{"data.datasets": ("casme2/cropped",)})
  with pytest.raises(FileNotFoundError, match="never built"):
    train.train_and_evaluate(unbuilt, str(tmp_path / "a"))
  too_many = tiny_config(tiny_data_dir, **{"protocol.val_subjects": 6})
  with pytest.raises(ValueError, match="val_subjects"):
    train.train_and_evaluate(too_many, str(tmp_path / "a"))
  assert not (tmp_path / "a").exists()
  # A config.json left by a run that never trained (an older mejax claimed first) is re-claimed.
  (tmp_path / "b").mkdir()
  stale = tiny_config(tiny_data_dir, **{"train.learning_rate": 0.5})
  (tmp_path / "b" / "config.json").write_text(stale.to_json())
  config = tiny_config(tiny_data_dir)
  train.train_and_evaluate(config, str(tmp_path / "b"))
  assert json.loads((tmp_path / "b" / "config.json").read_text())["train"]["learning_rate"] == (
      config.train.learning_rate)


@pytest.mark.parametrize("key, value, message", [
    ("train.batch_size", 0, "train.batch_size=0: must be an integer >= 1"),
    ("train.batch_size", -4, "train.batch_size=-4: must be an integer >= 1"),
    ("train.num_epochs", 0, "train.num_epochs=0: must be an integer >= 1"),
    ("train.num_epochs", -2, "train.num_epochs=-2: must be an integer >= 1"),
    ("train.learning_rate", 0.0, "train.learning_rate=0.0: must be a number > 0"),
    ("eval.batch_size", 0, "eval.batch_size=0: must be an integer >= 1"),
    ("data.datasets", (), "data.datasets=(): must be a tuple of one or more dataset names"),
    ("data.size", 0, "data.size=0: must be an integer >= 1"),
    ("protocol.k", 1, "protocol.k=1: must be an integer >= 2"),
    ("train.optimizer", "adamw", "Unknown train.optimizer 'adamw'"),
])
def test_impossible_settings_are_refused_before_anything_is_written(tiny_data_dir, tmp_path,
                                                                    key, value, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    train.train_and_evaluate(tiny_config(tiny_data_dir, **{key: value}), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_the_command_line_prints_one_line_for_bad_settings(tmp_path):
  cases = [
      (["--config.train.no_such=1"], "error: --config.train.no_such: no such config key (train "
       "has: balanced_sampling, batch_size"),
      (["--config.train.batch_size=0"], "error: train.batch_size=0: must be an integer >= 1"),
      (["--config.train.batch_size=abc"], "error: flag --config.train.batch_size=abc: invalid "
       "literal for int()"),
  ]
  for extra, expected in cases:
    result = subprocess.run(
        [sys.executable, "-m", "mejax.main", "--config", "configs/convlstm.py:smoke",
         "--workdir", str(tmp_path / "w"), *extra], capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines and lines[0].startswith(expected), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
  assert not (tmp_path / "w").exists()


def test_a_full_disk_is_named_and_the_same_command_resumes(reference, tmp_path, monkeypatch):
  config, workdir = reference
  run = tmp_path / "run"
  save = checkpoints.save

  def no_space_at_epoch_2(mngr, epoch, *args, **kwargs):
    if epoch == 2:
      raise OSError(errno.ENOSPC, "No space left on device")
    return save(mngr, epoch, *args, **kwargs)

  monkeypatch.setattr(checkpoints, "save", no_space_at_epoch_2)
  with pytest.raises(files.DiskFull, match=rf"no space left on the device of "
                                           rf"{run / 'checkpoints' / '2'} while writing it \(it "
                                           r"needs about [\d.]+ MiB\); [\d.]+ MiB free there"):
    train.train_and_evaluate(config, str(run))
  assert not (run / "metrics.json").exists()
  monkeypatch.setattr(checkpoints, "save", save)
  train.train_and_evaluate(config, str(run))  # space freed: the same command resumes
  assert results(run) == results(workdir)


def _pages(path: pathlib.Path) -> int:
  """Bytes a file, or a folder's files, take on a tmpfs (whole 4 KiB pages)."""
  paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
  return sum(-(-p.stat().st_size // 4096) * 4096 for p in paths)


def test_a_real_full_filesystem_is_one_message_and_the_same_command_resumes(reference, tmp_path):
  """A tmpfs with room for the first checkpoint but not the second: tensorstore's own write
  fails (no injected error). The command prints one `error:` line naming the file, without
  orbax's dozens of thread and task tracebacks; after the filesystem grows, the run resumes
  and ends as the uninterrupted run."""
  config, workdir = reference
  mount = tmp_path / "small"
  mount.mkdir()
  files_before = sum(_pages(workdir / name) for name in ("config.json", "folds.json",
                                                        "skipped_samples.json", "tensorboard"))
  room = files_before + int(1.5 * _pages(workdir / "checkpoints" / "3")) + 64 * 1024
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room}", "tmpfs", str(mount)],
                           capture_output=True)
  if mounted.returncode != 0:
    pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()}); the "
                "injected ENOSPC tests above cover the same path")
  try:
    run = mount / "run"
    command = [sys.executable, "-m", "mejax.main", "--config", str(REPO / "tests" /
                                                                   "tiny_config.py"),
               f"--config.data.data_dir={config.data.data_dir}", "--config.train.num_epochs=3",
               "--workdir", str(run)]
    full = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert full.returncode == 2, full.stderr[-3000:]
    errors = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: no space left on the device of {run}/checkpoints/"), full.stderr[-3000:]
    for noise in ("Traceback", "Event loop is closed", "exception was never retrieved"):
      assert noise not in full.stderr, full.stderr[-3000:]
    assert not (run / "metrics.json").exists()
    subprocess.run(["mount", "-o", f"remount,size={8 * room}", str(mount)], check=True)
    train.train_and_evaluate(config, str(run))
    assert results(run) == results(workdir)
  finally:
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_while_writing_results_leaves_no_half_file(reference, tmp_path,
                                                               monkeypatch):
  config, workdir = reference
  run = unfinished_copy(reference, tmp_path)
  real_write = files.write_atomic

  def full(path, text):
    if path.name == "metrics.json":
      raise files.as_disk_full(OSError(errno.ENOSPC, "No space left on device"), path)
    return real_write(path, text)

  monkeypatch.setattr(files, "write_atomic", full)
  with pytest.raises(files.DiskFull, match="metrics.json"):
    train.train_and_evaluate(config, str(run))
  assert not (run / "metrics.json").exists() and not list(run.glob("*.tmp"))
  monkeypatch.setattr(files, "write_atomic", real_write)
  train.train_and_evaluate(config, str(run))
  assert results(run) == results(workdir)


def test_a_resumed_run_writes_each_epoch_once_to_tensorboard(reference, tmp_path):
  from tensorboard.backend.event_processing import event_file_loader
  config, _ = reference
  run = unfinished_copy(reference, tmp_path)
  shutil.rmtree(run / "checkpoints" / "3")     # killed after epoch 2's checkpoint
  train.train_and_evaluate(config, str(run))   # resumes: epoch 3 again
  steps = []
  for events in sorted((run / "tensorboard").glob("events.out.tfevents.*")):
    for event in event_file_loader.EventFileLoader(str(events)).Load():
      if event.summary.value:
        steps.append(event.step)
  assert sorted(steps) == [1, 2, 3]


def test_results_are_readable_by_the_group_as_other_tools_make_them(reference):
  _, workdir = reference
  mask = os.umask(0)
  os.umask(mask)
  for name in ("config.json", "folds.json", "predictions.csv", "metrics.json",
               "confusion_matrix.png"):
    assert (workdir / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_analysing_a_damaged_checkpoint_names_it_and_the_epochs_that_can_be_read(reference,
                                                                                 tmp_path):
  from mejax import runs
  _, workdir = reference
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  (run / "checkpoints" / "3" / "experiment" / "metadata").write_text("{")
  before = snapshot(run)
  with pytest.raises(runs.RunError, match=rf"checkpoint {run / 'checkpoints' / '3'} is damaged "
                                          r"\(JSONDecodeError: .*\); another saved epoch can be "
                                          r"read with --epoch \(\[2\]\)"):
    runs.load(run)
  assert runs.load(run, epoch=2).epoch == 2
  assert snapshot(run) == before  # analysis never sets aside or changes anything
