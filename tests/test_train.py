"""End-to-end training on synthetic_me/micro_tiny: outputs, invariants, resume and bad input.

Every run here is a real `train_and_evaluate` on a tiny width and clip size, on 8 fake CPU devices.
"""

import csv
import importlib.util
import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
import tiny_config as tiny_config_file

from mejax import checkpoints
from mejax import runs
from mejax import sweep
from mejax import train
from mejax.data import clipset as clipset_lib
from mejax.data import labels as labels_lib

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(preset="smoke"):
  spec = importlib.util.spec_from_file_location("convlstm_config", REPO / "configs/convlstm.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def tiny_config(data_dir, **overrides):
  c = tiny_config_file.get_config()
  c.data.data_dir = data_dir
  for dotted, value in overrides.items():
    node = c
    *parents, leaf = dotted.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def read_predictions(workdir):
  with open(pathlib.Path(workdir) / "predictions.csv") as f:
    return {row["sample_id"]: row for row in csv.DictReader(f)}


def probabilities(rows, fold=None):
  return {k: np.asarray([float(v) for c, v in r.items() if c.startswith("p_")])
          for k, r in rows.items() if fold is None or r["fold"] == fold}


@pytest.fixture(scope="module")
def reference_run(tiny_data_dir, tmp_path_factory):
  """One uninterrupted run that several tests compare against."""
  workdir = tmp_path_factory.mktemp("reference")
  config = tiny_config(tiny_data_dir, **{"train.num_epochs": 3})
  report = train.train_and_evaluate(config, str(workdir))
  return config, workdir, report


def test_run_writes_every_output(reference_run):
  config, workdir, report = reference_run
  for name in ("config.json", "folds.json", "skipped_samples.json", "predictions.csv",
               "metrics.json", "confusion_matrix.png", "training_curves.png"):
    assert (workdir / name).exists(), name
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  folds = json.loads((workdir / "folds.json").read_text())
  rows = read_predictions(workdir)
  # LOSO: every clip is tested exactly once, by the fold of its own subject.
  test_ids = [s for fold in folds["folds"] for s in fold["test"]]
  assert sorted(test_ids) == sorted(rows)
  for row in rows.values():
    assert row["fold"].endswith(row["subject"])
    p = [float(v) for c, v in row.items() if c.startswith("p_")]
    assert abs(sum(p) - 1) < 1e-4 and len(p) == 3
  result = json.loads((workdir / "metrics.json").read_text())
  assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
  assert result["model_selection"] == "last epoch"
  pooled = result["report"]["pooled"]
  labels = np.asarray([r["label"] for r in rows.values()])
  preds = np.asarray([r["prediction"] for r in rows.values()])
  assert pooled["accuracy"] == pytest.approx(float(np.mean(labels == preds)))
  assert report["pooled"]["uar"] == pooled["uar"]


def test_same_config_and_seed_give_the_same_metrics(reference_run, tmp_path):
  config, workdir, report = reference_run
  again = train.train_and_evaluate(config, str(tmp_path / "again"))
  assert json.dumps(again, sort_keys=True) == json.dumps(report, sort_keys=True)
  assert read_predictions(tmp_path / "again") == read_predictions(workdir)


def test_fold_trained_alone_equals_fold_in_the_sweep(reference_run, tmp_path):
  config, workdir, _ = reference_run
  fold_index = 2
  alone = tiny_config(config.data.data_dir, **{"train.num_epochs": 3,
                                              "train.only_folds": (fold_index,)})
  train.train_and_evaluate(alone, str(tmp_path / "alone"))
  fold_name = json.loads((workdir / "folds.json").read_text())["folds"][fold_index]["name"]
  swept = probabilities(read_predictions(workdir), fold_name)
  single = probabilities(read_predictions(tmp_path / "alone"))
  assert swept.keys() == single.keys() and swept
  for k in swept:
    np.testing.assert_allclose(single[k], swept[k], atol=1e-4)


def test_meshes_and_fold_strategies_give_the_same_results(reference_run, tmp_path):
  assert jax.device_count() == 8
  config, workdir, _ = reference_run
  reference = probabilities(read_predictions(workdir))
  for name, overrides in (("one_device", {"mesh.num_devices": 1}),
                          ("data_parallel", {"mesh.data": 2}),
                          ("loop_one_device", {"mesh.num_devices": 1,
                                               "train.fold_strategy": "loop"}),
                          # All folds on one device, vmapped two at a time (memory-bounded).
                          ("chunks_of_two", {"mesh.num_devices": 1, "train.fold_chunk": 2}),
                          ("map_one_device", {"mesh.num_devices": 1,
                                              "train.fold_strategy": "map"})):
    c = tiny_config(config.data.data_dir, **{"train.num_epochs": 3, **overrides})
    train.train_and_evaluate(c, str(tmp_path / name))
    other = probabilities(read_predictions(tmp_path / name))
    for k in reference:
      np.testing.assert_allclose(other[k], reference[k], atol=1e-4, err_msg=name)


def test_killed_run_resumes_to_the_same_metrics(reference_run, tmp_path, monkeypatch):
  config, workdir, report = reference_run
  compile_train_step = sweep.Sweep.compile_train_step
  calls = {"n": 0}

  def dying_compile_train_step(self, *args, **kwargs):
    chunk, step = compile_train_step(self, *args, **kwargs)

    def counted(*a):
      calls["n"] += 1
      if calls["n"] == 4:  # second step of epoch 2: epoch 1 is checkpointed
        raise KeyboardInterrupt("killed")
      return step(*a)
    return chunk, counted

  monkeypatch.setattr(sweep.Sweep, "compile_train_step", dying_compile_train_step)
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "metrics.json").exists()
  assert checkpoints.manager(tmp_path / "run").latest_step() == 1
  monkeypatch.setattr(sweep.Sweep, "compile_train_step", compile_train_step)
  resumed = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert json.dumps(resumed, sort_keys=True) == json.dumps(report, sort_keys=True)
  history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
  assert history == json.loads((workdir / "metrics.json").read_text())["history"]


def test_held_out_subject_contributes_nothing_to_its_fold(tiny_data_dir, tmp_path, monkeypatch):
  """Scrambling the test subject's frames and labels leaves its fold's training bit-identical,
  with inner validation, reduce-on-plateau and early stopping switched on."""
  overrides = {"protocol.val_subjects": 1, "train.plateau_patience": 1,
               "train.early_stopping_patience": 2, "train.num_epochs": 3}
  fold_index = 1
  train.train_and_evaluate(tiny_config(tiny_data_dir, **overrides), str(tmp_path / "clean"))

  prepare_view = sweep.prepare_view

  def scrambled(clips, inputs, config, *variants):
    exp = prepare_view(clips, inputs, config, *variants)
    test = exp.folds.test[fold_index]
    rng = np.random.default_rng(0)
    exp.inputs[test] = rng.integers(0, 256, exp.inputs[test].shape, dtype=np.uint8)
    exp.clips.label[test] = (exp.clips.label[test] + 1) % exp.clips.num_classes
    return exp

  monkeypatch.setattr(sweep, "prepare_view", scrambled)
  train.train_and_evaluate(tiny_config(tiny_data_dir, **overrides), str(tmp_path / "scrambled"))
  clean = runs.load(tmp_path / "clean", whole_state=True)
  dirty = runs.load(tmp_path / "scrambled", whole_state=True)
  assert clean.folds.to_json() == json.loads((tmp_path / "clean" / "folds.json").read_text())
  assert clean.config.protocol.val_subjects == 1
  lane = lambda tree: jax.tree_util.tree_map(lambda x: np.asarray(x)[fold_index], tree)
  for key in ("params", "batch_stats", "best_params", "lr_scale", "best_val_loss", "stopped"):
    jax.tree_util.tree_map(np.testing.assert_array_equal, lane(getattr(clean.state, key)),
                           lane(getattr(dirty.state, key)))
  # ...while another fold, which trains on those clips, does change.
  other = lambda tree: np.asarray(jax.tree_util.tree_leaves(tree)[0])[0]
  assert not np.array_equal(other(clean.state.params), other(dirty.state.params))


def test_missing_class_in_a_fold_is_named_in_a_warning():
  lmap = labels_lib.get_label_map("megc2019")
  records = []
  for s, emotions in (("a", ["happiness", "disgust"]), ("b", ["happiness", "disgust"]),
                      ("c", ["surprise", "disgust"])):
    for i, e in enumerate(emotions):
      frames = np.zeros((6, 8, 8, 3), np.uint8)
      records.append({"sample_id": f"{s}{i}", "dataset": "toy", "subject": s, "emotion": e,
                      "action_units": "", "objective_class": 0, "fps": 30.0, "onset": 0,
                      "apex": 3, "offset": 5, "source_frames": np.arange(6), "frames": frames})
  clips = clipset_lib.from_records(records, lmap)
  config = tiny_config("unused")
  exp = sweep.prepare_clips(clips, config)
  assert exp.warnings == ["Fold loso:toy/c has no training sample of class 'surprise': it gets "
                          "zero sampling and loss weight"]


def test_bad_input_is_refused_with_a_clear_message(tiny_data_dir, reference_run, tmp_path):
  config, workdir, _ = reference_run
  with pytest.raises(ValueError, match="Unknown model 'resnet9000'.*model.name"):
    train.train_and_evaluate(tiny_config(tiny_data_dir, **{"model.name": "resnet9000"}),
                             str(tmp_path / "a"))
  with pytest.raises(FileNotFoundError, match="casme2/cropped.*never built.*mejax.prepare"):
    train.train_and_evaluate(tiny_config(str(tmp_path / "empty"),
                                         **{"data.datasets": ("casme2/cropped",)}),
                             str(tmp_path / "b"))
  with pytest.raises(ValueError, match="Unknown dataset 'no_such_set'"):
    train.train_and_evaluate(tiny_config(tiny_data_dir, **{"data.datasets": ("no_such_set",)}),
                             str(tmp_path / "c"))
  before = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
  with pytest.raises(ValueError, match="different experiment.*train.learning_rate"):
    train.train_and_evaluate(tiny_config(tiny_data_dir, **{"train.num_epochs": 3,
                                                            "train.learning_rate": 0.5}),
                             str(workdir))
  assert {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()} == before


def test_non_finite_loss_stops_the_run_and_keeps_earlier_results(tiny_data_dir, tmp_path):
  config = tiny_config(tiny_data_dir, **{"train.learning_rate": 1e38})
  with pytest.raises(FloatingPointError, match="Non-finite training loss in epoch"):
    train.train_and_evaluate(config, str(tmp_path / "nan"))
  assert not (tmp_path / "nan" / "metrics.json").exists()


def test_command_line_refuses_unknown_config_keys(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "mejax.main", "--config", str(REPO / "configs/convlstm.py:smoke"),
       "--workdir", str(tmp_path / "w"), "--config.train.no_such_key=1"],
      capture_output=True, text=True, cwd=REPO, timeout=300)
  assert result.returncode != 0
  assert "no_such_key" in result.stderr
  assert not (tmp_path / "w").exists()


def test_learning_rate_schedules():
  config = load_config("smoke")
  assert sweep.learning_rate(config, 10) == config.train.learning_rate
  config.train.lr_schedule = "cosine"
  schedule = sweep.learning_rate(config, 10)
  total = config.train.num_epochs * 10
  assert float(schedule(0)) == pytest.approx(config.train.learning_rate)
  assert float(schedule(total // 2)) == pytest.approx(config.train.learning_rate / 2, rel=1e-3)
  assert float(schedule(total)) == pytest.approx(0.0, abs=1e-9)
  config.train.lr_schedule = "step"
  with pytest.raises(ValueError, match="train.lr_schedule"):
    sweep.learning_rate(config, 10)


def test_execution_keys_may_change_on_resume_but_experiment_keys_may_not(tmp_path):
  """Fold strategy, fold chunk, conv lowering and view cache change how a run computes, not
  what: a workdir accepts them changed (a resume) and refuses a changed learning rate."""
  config = load_config("smoke")
  assert not checkpoints.claim_workdir(tmp_path, config)
  (tmp_path / "metrics.json").write_text("{}")  # it trained: another experiment may not claim it
  for key, value in (("train.fold_strategy", "vmap"), ("train.fold_chunk", 2),
                     ("model.conv_lowering", "auto"), ("data.view_cache", False)):
    other = load_config("smoke")
    section, leaf = key.split(".")
    other[section][leaf] = value
    assert checkpoints.claim_workdir(tmp_path, other), key
  other = load_config("smoke")
  other.train.learning_rate = 0.5
  with pytest.raises(ValueError, match="train.learning_rate"):
    checkpoints.claim_workdir(tmp_path, other)


def test_a_class_absent_from_the_whole_data_is_named_once_not_per_fold():
  """SMIC under a 4-class map has no 'other' clip: one warning, not one per fold."""
  lmap = labels_lib.get_label_map("megc2019")
  records = []
  for s in "abc":
    for i, e in enumerate(["happiness", "disgust"]):
      records.append({"sample_id": f"{s}{i}", "dataset": "toy", "subject": s, "emotion": e,
                      "action_units": "", "objective_class": 0, "fps": 30.0, "onset": 0,
                      "apex": 3, "offset": 5, "source_frames": np.arange(6),
                      "frames": np.zeros((6, 8, 8, 3), np.uint8)})
  clips = clipset_lib.from_records(records, lmap)
  exp = sweep.prepare_clips(clips, tiny_config("unused"))
  assert exp.warnings == ["Class 'surprise' has no clip in the data: every fold gives it zero "
                          "sampling and loss weight"]
