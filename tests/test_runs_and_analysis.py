"""A finished run as an artefact: restored on another device count, analysed, checked.

The session's `tiny_run` was trained on 8 fake CPU devices; restores here happen in a 1-device
subprocess and in this 8-device process.
"""

import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mejax import analyze
from mejax import reports
from mejax import runs

REPO = pathlib.Path(__file__).resolve().parents[1]


def one_device_env():
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO / "tests"))
  env.pop("XLA_FLAGS", None)  # one CPU device
  return env


def snapshot(directory: pathlib.Path) -> dict:
  """Every file under a directory with its bytes: what 'nothing was changed' is checked against."""
  return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
          if p.is_file()}


def predictions_csv(workdir) -> dict:
  with open(pathlib.Path(workdir) / "predictions.csv") as f:
    return {(r["sample_id"], r["fold"]): np.asarray([float(v) for k, v in r.items()
                                                     if k.startswith("p_")])
            for r in csv.DictReader(f)}


def test_a_run_saved_on_8_devices_restores_on_1_and_back(tiny_run, tiny_data_dir, tmp_path):
  """8 -> 1: a 1-device process restores the 8-device run and recomputes its test predictions,
  which equal predictions.csv; it also trains a run on its 1 device, which this 8-device process
  restores (1 -> 8) with the same check."""
  config, workdir = tiny_run
  one_device_run = tmp_path / "trained_on_one_device"
  script = textwrap.dedent(f"""
      import jax, json, numpy as np, tiny_config
      from mejax import analyze, runs, train
      assert jax.device_count() == 1
      run = runs.load({str(workdir)!r})
      clips, view = run.data({tiny_data_dir!r})
      predictions, _ = analyze.recompute(run, view)
      print(analyze.check_against_csv(run, clips, predictions))
      c = tiny_config.get_config()
      c.data.data_dir = {tiny_data_dir!r}
      c.train.fold_strategy = "loop"
      train.train_and_evaluate(c, {str(one_device_run)!r})
      """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, env=one_device_env(), timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "equal to predictions.csv" in result.stdout
  print(result.stdout.strip().splitlines()[0])

  run = runs.load(one_device_run)  # 1 -> 8: this process has 8 devices
  clips, view = run.data(tiny_data_dir)
  predictions, features = analyze.recompute(run, view)
  stored = predictions_csv(one_device_run)
  assert len(stored) == len(predictions.index) == len(clips)
  for i, fold, probs in zip(predictions.index, predictions.fold, predictions.probabilities):
    np.testing.assert_allclose(probs, stored[(clips.uid[i], fold)], atol=2e-4)
  assert features.shape[0] == len(clips) and np.isfinite(features).all()


def test_run_exposes_config_folds_history_and_only_real_folds(tiny_run):
  config, workdir = tiny_run
  run = runs.load(workdir)
  folds = json.loads((workdir / "folds.json").read_text())
  metrics = json.loads((workdir / "metrics.json").read_text())
  assert run.folds.to_json() == folds
  assert run.fold_names == [f["name"] for f in folds["folds"]]  # 6 folds; 8 lanes were trained
  assert sorted(run.variables) == sorted(run.fold_names)
  assert run.history == metrics["history"]
  assert run.config.model.width_multiplier == config.model.width_multiplier
  assert run.finished and run.epoch == config.train.num_epochs and run.selection == "final"
  with pytest.raises(runs.RunError, match="no fold 'nope'.*loso:"):
    run.apply("nope", np.zeros((1,) + run.input_shape, np.uint8))
  with pytest.raises(runs.RunError, match=r"shape \(1, 3, 16, 16, 3\).*\(N, 4, 16, 16, 3\)"):
    run.apply(run.fold_names[0], np.zeros((1, 3, 16, 16, 3), np.uint8))
  with pytest.raises(runs.RunError, match="kept no best state"):
    runs.load(workdir, select="best")


def test_analyze_writes_a_self_contained_report_and_changes_nothing(tiny_run, tiny_data_dir,
                                                                     tmp_path):
  _, workdir = tiny_run
  before = snapshot(workdir)
  out = tmp_path / "analysis"
  summary = analyze.analyze(workdir, out, data_dir=tiny_data_dir)
  assert snapshot(workdir) == before
  page = (out / "report.html").read_text()
  for section in ("Results", "Per subject", "Per fold", "Learning curves", "Calibration",
                  "Embeddings", "Saliency", "Misclassified clips", "Config",
                  "equal to predictions.csv"):
    assert section in page, section
  # Self-contained: every picture is embedded; the PNGs are also beside it.
  assert 'src="data:image/png;base64,' in page and 'src="confusion' not in page
  for name in ("confusion_pooled.png", "per_subject_accuracy.png", "learning_curves.png",
               "reliability.png", "embedding.png", "misclassified.png"):
    assert (out / name).stat().st_size > 1000, name
  assert list(out.glob("saliency_*.png"))
  metrics = json.loads((workdir / "metrics.json").read_text())["report"]["pooled"]
  for key in ("accuracy", "uar", "uf1"):
    assert summary["pooled"][key] == pytest.approx(metrics[key])
    assert f"{metrics[key]:.3f}" in page


def test_calibration_error_by_hand():
  probs = np.asarray([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
  labels = np.asarray([0, 1, 0, 1])
  cal = reports.calibration(probs, labels, bins=10)
  # bins: 0.9 -> [0.9, 1] acc 1; 0.8 -> [0.8, 0.9) acc 0; 0.6 -> acc 1; 0.7 -> acc 1
  expected = (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.6) + abs(1 - 0.7)) / 4
  assert cal["ece"] == pytest.approx(expected)
  assert sum(b["n"] for b in cal["bins"]) == 4


def test_a_changed_prediction_is_named_with_both_values(tiny_run, tiny_data_dir, tmp_path,
                                                       capsys):
  _, workdir = tiny_run
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)
  lines = (copy / "predictions.csv").read_text().splitlines()
  cells = lines[3].split(",")
  cells[-1], cells[-2] = cells[-2], cells[-1]  # two class probabilities swapped
  lines[3] = ",".join(cells)
  (copy / "predictions.csv").write_text("\n".join(lines) + "\n")
  before = snapshot(copy)
  assert analyze.main(["--workdir", str(copy), "--data_dir", tiny_data_dir,
                       "--out", str(tmp_path / "a")]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith(f"error: {copy / 'predictions.csv'}: clip {cells[0]} (fold {cells[3]})")
  assert "predictions.csv has [" in err and "the restored model gives [" in err
  assert len(err.splitlines()) == 1
  assert snapshot(copy) == before


def test_bad_workdirs_get_one_clear_line(tiny_run, tmp_path, capsys):
  _, workdir = tiny_run

  def error_of(path, *extra):
    assert analyze.main(["--workdir", str(path), "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err

  assert "not a mejax run (no such directory)" in error_of(tmp_path / "missing")
  (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
  assert "no checkpoint in" in error_of(tmp_path / "empty")
  assert "no checkpoint of epoch 7; saved epochs: [1, 2]" in error_of(workdir, "--epoch", "7")
  old = tmp_path / "old"
  shutil.copytree(workdir, old)
  for record in old.glob("checkpoints/*/experiment/*"):
    if record.is_file() and record.read_text().startswith("{"):
      data = json.loads(record.read_text())
      data.pop("format")
      record.write_text(json.dumps(data))
  err = error_of(old)
  assert "checkpoint format 1, but this mejax reads format 2" in err and str(old) in err
  assert not (tmp_path / "out").exists()


def test_an_unfinished_run_is_analysed_at_its_last_checkpoint_and_says_so(tiny_run,
                                                                           tiny_data_dir,
                                                                           tmp_path):
  _, workdir = tiny_run
  unfinished = tmp_path / "unfinished"
  shutil.copytree(workdir, unfinished)
  (unfinished / "metrics.json").unlink()
  (unfinished / "predictions.csv").unlink()
  summary = analyze.analyze(unfinished, tmp_path / "a", data_dir=tiny_data_dir, epoch=1)
  assert any("holds no finished run" in n and "epoch 1 of 2" in n for n in summary["notes"])
  assert "holds no finished run" in (tmp_path / "a" / "report.html").read_text()


@pytest.mark.slow
def test_a_model_with_per_fold_constants_restores_and_is_analysed(tiny_data_dir, tmp_path):
  """STRCN-A keeps each fold's pixel selection in its `constants` collection: restored with the
  variables, the re-scored test clips equal predictions.csv, and the report has no Grad-CAM (no
  3D conv block) but gradient x input."""
  from mejax import config_files
  from mejax import train
  config = config_files.load(REPO / "configs/strcn_a.py", "smoke")
  config.data.datasets = ("synthetic_me/micro_tiny",)
  config.data.data_dir = tiny_data_dir
  config.train.num_epochs = config.eval.every_epochs = 1
  config.train.only_folds = (0, 1)
  config.progress = False
  config.train.fold_strategy = "auto"  # the smoke preset loops on one device; here are 8
  train.train_and_evaluate(config, str(tmp_path / "strcn_a"))
  run = runs.load(tmp_path / "strcn_a")
  index = [v["constants"]["pixel_index"] for v in run.variables.values()]
  assert len(index) == 2 and not np.array_equal(index[0], index[1])  # one selection per fold
  summary = analyze.analyze(tmp_path / "strcn_a", tmp_path / "a")
  assert "equal to predictions.csv" in summary["checks"][0]
  page = (tmp_path / "a" / "report.html").read_text()
  assert "Maps: gradient x input," in page
