"""Protocol fixes (issue 14): steps per epoch from the whole protocol, flips of flow views and
augmentations a view refuses, model fields on the command line, the view cache's code version,
SMIC ids across cameras, and the extra metrics a paper reported."""

import json
import math
import pathlib
import shutil
import subprocess
import sys
import types

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tiny_config as tiny_config_file

from mejax import config_files
from mejax import metrics
from mejax import models
from mejax import reports
from mejax import sweep
from mejax import train
from mejax.data import clipset as clipset_lib
from mejax.data import labels as labels_lib
from mejax.data import on_device
from mejax.data import view_cache
from mejax.data import views
from mejax.models import summary

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


# ---- 1. steps per epoch from every fold of the protocol ------------------------------------------

def _probabilities(workdir, fold=None):
  rows = reports.read_predictions_csv(pathlib.Path(workdir) / "predictions.csv")
  return {r["sample_id"]: np.asarray([float(v) for k, v in r.items() if k.startswith("p_")])
          for r in rows if fold is None or r["fold"] == fold}


def _small_run_config(data_dir, **train):
  """tests/tiny_config.py with a one-conv STCNN (compiles in seconds) and `train` settings."""
  config = tiny_config_file.get_config()
  config.data.data_dir = data_dir
  config.model = ml_collections.ConfigDict({"name": "stcnn", "filters": 4, "dense_features": 8,
                                            "kernel_size": (3, 3, 3), "pool_window": 2,
                                            "dtype": "float32"})
  config.train.rotate_degrees = 0.0
  config.train.update(train)
  return config


def test_fold_trained_alone_equals_the_fold_in_the_sweep_with_derived_steps(tiny_data_dir,
                                                                             tmp_path):
  # steps_per_epoch=0: steps from the training sets, where a fold alone used to get fewer.
  config = _small_run_config(tiny_data_dir, steps_per_epoch=0, num_epochs=1)
  exp = sweep.prepare(config)
  sizes = exp.folds.train.sum(1)
  steps = [math.ceil(n / config.train.batch_size) for n in sizes]
  # A fold whose own training set needs fewer steps than the protocol's largest.
  fold = int(np.argmin(steps))
  assert steps[fold] < max(steps), sizes
  train.train_and_evaluate(config, str(tmp_path / "sweep"))
  alone = _small_run_config(tiny_data_dir, steps_per_epoch=0, num_epochs=1, only_folds=(fold,))
  train.train_and_evaluate(alone, str(tmp_path / "alone"))
  swept = _probabilities(tmp_path / "sweep", exp.folds.names[fold])
  single = _probabilities(tmp_path / "alone")
  assert swept.keys() == single.keys() and swept
  for k in swept:
    np.testing.assert_allclose(single[k], swept[k], atol=1e-4)


# ---- 2. flips of flow views; augmentations a view or model refuses -------------------------------

def _flow_data(**kw):
  return ml_collections.ConfigDict(dict(dict(
      view="flow", num_frames=2, size=24, grey=True, regions="", magnify_alpha=0.0,
      flow_range=4.0, flow_method="farneback", flow_strain=True, strain_range=1.0,
      normalisation="unit", relative_to_first_frame=False), **kw))


@pytest.mark.parametrize("normalisation", ["unit", "kinetics"])
def test_mirroring_a_flow_view_negates_u_and_twice_gives_it_back(normalisation):
  to_input = sweep.input_transform(_flow_data(normalisation=normalisation))
  view = np.random.default_rng(0).integers(0, 256, (2, 1, 6, 5, 3), dtype=np.uint8)
  x = to_input(jnp.asarray(view))
  mirrored = on_device.mirror(x, to_input.mirror_centres)
  np.testing.assert_allclose(on_device.mirror(mirrored, to_input.mirror_centres), x, atol=1e-5)
  # u about the stored midpoint 127.5 (uint8 q -> 255 - q); v and the strain only move.
  expected = view[:, :, :, ::-1].copy()
  expected[..., 0] = 255 - expected[..., 0]
  np.testing.assert_allclose(mirrored, to_input(jnp.asarray(expected)), atol=1e-5)
  # Frame views: a plain mirror, as before.
  frames = sweep.input_transform(_flow_data(view="onset_apex", grey=False))
  assert frames.mirror_centres == ()


def test_flipped_flow_of_a_clip_is_the_flow_of_the_mirrored_clip():
  rng = np.random.default_rng(1)
  texture = cv2_blur(rng.integers(0, 256, (48, 48), dtype=np.uint8))
  # The face moves 1 px right and 1 px down between onset and apex.
  frames = np.stack([texture[2:34, 2:34], texture[1:33, 1:33]])[..., None]
  data = _flow_data(size=32)
  to_input = sweep.input_transform(data)
  flow = to_input(jnp.asarray(views.clip_view(frames, 0, 1, 1, data)[None]))
  flow_of_mirror = to_input(jnp.asarray(views.clip_view(frames[:, :, ::-1], 0, 1, 1, data)[None]))
  inner = (slice(None), slice(None), slice(6, -6), slice(6, -6))
  flipped = on_device.mirror(flow, to_input.mirror_centres)
  error = np.abs(np.asarray(flipped - flow_of_mirror)[inner]).mean(axis=(0, 1, 2, 3))
  # Up to quantisation and the flow estimate's own asymmetry (0.25 = 1 px of u).
  assert np.all(error < 0.03), error
  # Mirroring the pixels alone leaves u pointing the old way.
  pixels_only = np.abs(np.asarray(on_device.mirror(flow) - flow_of_mirror)[inner])[..., 0]
  assert pixels_only.mean() > 0.3


def cv2_blur(image):
  import cv2
  return cv2.GaussianBlur(image, (5, 5), 1.5)


PAPER_CONFIGS = [("stcnn.py", None), ("stcnn.py", "smoke"), ("fusenet.py", None),
                 ("fusenet.py", "late,smoke"), ("model_a.py", "split"), ("model_a.py", "model_b"),
                 ("model_a.py", "model_c,smoke"), ("strcn_g.py", None), ("strcn_g.py", "smoke"),
                 ("strcn_a.py", None), ("strcn_a.py", "smoke"), ("dynamic_image.py", None),
                 ("dynamic_image.py", "resnet,smoke"), ("convlstm.py", None),
                 ("convlstm.py", "smoke"), ("convlstm.py", "paper"), ("convlstm.py", "macro")]


@pytest.mark.parametrize("file, preset", PAPER_CONFIGS)
def test_paper_configs_pass_their_own_checks(file, preset):
  train.check_config(config_files.load(CONFIGS / file, preset))


@pytest.mark.parametrize("file, preset, key, value, message", [
    ("strcn_g.py", "smoke", "train.rotate_degrees", 8.0,
     r"train.rotate_degrees=8.0: rotating a flow view's pixels would leave its \(u, v\)"),
    ("strcn_g.py", "smoke", "train.frame_subsets", (1.0, 0.8),
     r"train.frame_subsets=\(1.0, 0.8\): the 'flow' view has one frame"),
    ("dynamic_image.py", "smoke", "train.frame_subsets", (1.0, 0.8),
     r"the 'dynamic_image' view has one frame"),
    ("dynamic_image.py", "smoke", "train.rotate_degrees", 5.0,
     r"train.rotate_degrees=5.0: the data.regions='dynamic_image' crops are stretched"),
    ("fusenet.py", "smoke", "train.rotate_degrees", 5.0, r"data.regions='fusenet' crops"),
    ("strcn_a.py", "smoke", "train.flip", True,
     r"train.flip=True: model 'strcn_a' reads pixels at fixed positions"),
    ("strcn_a.py", "smoke", "train.rotate_degrees", 3.0,
     r"train.rotate_degrees=3.0: model 'strcn_a' reads pixels at fixed positions"),
    ("convlstm.py", "smoke", "train.rotate_degrees", -2.0,
     r"train.rotate_degrees=-2.0: must be a number in \[0, 180\]"),
])
def test_augmentations_that_do_not_apply_are_refused_before_training(file, preset, key, value,
                                                                      message, tmp_path):
  config = config_files.load(CONFIGS / file, preset)
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_flips_of_flow_and_region_views_are_allowed():
  for file in ("strcn_g.py", "dynamic_image.py", "fusenet.py"):
    config = config_files.load(CONFIGS / file, "smoke")
    config.train.flip = True
    train.check_config(config)


# ---- 3. every model field on the command line ----------------------------------------------------

def _summary(*flags):
  out = subprocess.run([sys.executable, "-m", "mejax.models", "summary", "--json", *flags],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  return out


def test_a_model_field_the_config_file_does_not_set_can_be_overridden():
  default = _summary("--config", "configs/stcnn.py")
  assert default.returncode == 0, default.stderr
  kernel = _summary("--config", "configs/stcnn.py", "--config.model.kernel_size=(5,3,3)")
  assert kernel.returncode == 0, kernel.stderr
  conv1 = [[layer["output_shape"] for layer in json.loads(out.stdout)["layers"]
            if layer["path"] == "conv1"][0] for out in (default, kernel)]
  assert conv1 == [[1, 4, 62, 62, 32], [1, 14, 62, 62, 32]]  # 18 frames, kernel 15 -> 5
  unknown = _summary("--config", "configs/stcnn.py", "--config.model.kernel=5")
  assert unknown.returncode == 2
  assert unknown.stderr.strip().splitlines() == [
      "error: --config.model.kernel: no such config key (model has: conv_lowering, "
      "dense_features, dropout_rate, dtype, filters, kernel_size, name, pool_window)"]
  one_number = _summary("--config", "configs/stcnn.py", "--config.model.kernel_size=5")
  assert one_number.returncode == 2
  assert one_number.stderr.strip().splitlines() == [
      "error: model.kernel_size=(5,): must be a sequence of 3 like its default (15, 3, 3)"]


def test_config_json_holds_only_the_model_fields_set_or_overridden():
  """Defaults the command line did not override leave the section as Python loads it: a run
  started from the command line resumes from Python (and runs of older versions resume)."""
  code = ("import sys; from absl import flags; from ml_collections import config_flags; "
          "from mejax import config_files; "
          "config_flags.DEFINE_config_file('config', None, '', lock_config=True); "
          "config_files.parse_flags_or_exit(sys.argv); print(flags.FLAGS.config.model.to_json())")
  out = subprocess.run([sys.executable, "-c", code, "--config", "configs/model_a.py:model_b",
                        "--config.model.filters=8"], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0, out.stderr
  expected = config_files.load(CONFIGS / "model_a.py", "model_b").model.to_dict()
  assert json.loads(out.stdout) == dict(expected, filters=8)


@pytest.mark.parametrize("file, preset", [("model_a.py", "model_b"), ("model_a.py", "split"),
                                          ("dynamic_image.py", "resnet"), ("strcn_a.py", "smoke"),
                                          ("fusenet.py", "late,smoke")])
def test_completing_a_model_section_keeps_the_model(file, preset):
  """The defaults added are the final model's own (model_b's 32 filters, not model_a's 16)."""
  config = config_files.load(CONFIGS / file, preset)
  complete = config_files.complete_model(config_files.load(CONFIGS / file, preset))
  assert set(models.hyperparameters(config.model.name)) <= set(complete.model)
  shape = (1, *views.view_shape(config.data))
  sizes = [summary.summarize(models.from_config(c.model, 3, jnp.float32), shape)["total_params"]
           for c in (config, complete)]
  assert sizes[0] == sizes[1]


# ---- 4. the view cache key holds the view code's version -----------------------------------------

def test_a_new_view_version_names_another_cache_file(monkeypatch):
  data = _flow_data(datasets=("synthetic_me/micro",), label_map="megc2019", data_dir="/tmp/d")
  before = view_cache.cache_path(data)
  assert view_cache.cache_path(data) == before
  monkeypatch.setattr(views, "VIEW_VERSION", views.VIEW_VERSION + 1)
  after = view_cache.cache_path(data)
  assert after != before and after.parent == before.parent


# ---- 5. SMIC ids unique across cameras -----------------------------------------------------------

def test_smic_hs_and_vis_records_concatenate(tmp_path):
  import dataclasses

  from tfds_builders import testing
  from tfds_builders.smic import smic_dataset_builder as smic_builder
  dummy = REPO / "tfds_builders" / "smic" / "dummy_data"
  configs = {c.name: c for c in smic_builder.Builder.BUILDER_CONFIGS}
  # As in SMIC, VIS filmed the clips HS did, under the same names.
  manual = testing.copy_dummy(dummy, tmp_path)
  cropped = manual / "SMIC_all_cropped"
  shutil.copytree(cropped / "HS" / "s1", cropped / "VIS" / "s1")
  label_map = labels_lib.get_label_map("megc2019")
  parts = []
  for camera in ("hs", "vis"):
    config = dataclasses.replace(configs[camera], name=f"{camera}_ids", size=32)
    builder = smic_builder.Builder(config=config, data_dir=str(tmp_path / camera))
    records = list(testing.records(testing.prepare(builder, manual)).values())
    parts.append(clipset_lib.from_records(records, label_map))
  both = clipset_lib.concatenate(parts)
  uid = both.uid.tolist()
  assert len(set(uid)) == len(uid) == len(parts[0].uid) + len(parts[1].uid)
  assert {"smic/s1/s1_ne_01", "smic/VIS/s1/s1_ne_01"} <= set(uid)  # HS ids as MEGC2019 has them
  assert set(both.subject_key[both.sample_id == "VIS/s1/s1_ne_01"]) == set(
      both.subject_key[both.sample_id == "s1/s1_ne_01"])  # one subject: one LOSO fold


# ---- 6. extra metrics in metrics.json and the results table --------------------------------------

def _eval_config(extra):
  return ml_collections.ConfigDict({
      "eval": {"extra_metrics": extra}, "model": {"name": "strcn_g"},
      "data": {"datasets": ("x",)}, "protocol": {"name": "loso"}})


def test_extra_metrics_are_checked_by_name():
  assert reports.extra_metrics(_eval_config(("micro_f1",))) == ("micro_f1",)
  for bad in (("micro_f2",), "micro_f1", ("uar",)):
    with pytest.raises(ValueError, match=r"eval.extra_metrics=.*: must be a tuple of names from "
                                         r"\('micro_f1', 'uf1_all_classes'\)"):
      reports.extra_metrics(_eval_config(bad))
  config = config_files.load(CONFIGS / "strcn_a.py", "smoke")
  assert tuple(config.eval.extra_metrics) == ("micro_f1",)
  config.eval.extra_metrics = ("f1",)
  with pytest.raises(ValueError, match="eval.extra_metrics"):
    train.check_config(config)


def test_micro_f1_is_written_into_metrics_json_and_the_table(tmp_path, capsys):
  labels = np.asarray([0, 0, 1, 1, 2, 2, 0, 1])
  predicted = np.asarray([0, 1, 1, 1, 2, 0, 0, 2])
  n = len(labels)
  clips = types.SimpleNamespace(
      sample_id=np.asarray([f"c{i}" for i in range(n)]), dataset=np.asarray(["d"] * n),
      subject=np.asarray([f"s{i % 2}" for i in range(n)]), label=labels, num_classes=3,
      class_names=("negative", "positive", "surprise"), dropped=[],
      uid=np.asarray([f"d/c{i}" for i in range(n)]))
  logits = np.eye(3, dtype=np.float32)[predicted]
  predictions = reports.Predictions(np.arange(n), [f"s{i % 2}" for i in range(n)], logits)
  history = [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5}]
  for extra in ((), ("micro_f1",)):
    out = tmp_path / str(len(extra))
    out.mkdir()
    reports.write_results(out, _eval_config(extra), clips, predictions, history,
                          selection="last epoch", warnings=[], folds_trained=2)
    report = json.loads((out / "metrics.json").read_text())["report"]
    table = capsys.readouterr().out
    expected = metrics.classification_metrics(labels, predicted, 3)["micro_f1"]
    if extra:
      assert report["extra_metrics"] == {"micro_f1": pytest.approx(expected)}
      assert "micro_f1" in table.splitlines()[0]
      assert table.splitlines()[1].split()[-1] == f"{expected:.4f}"
    else:
      assert "extra_metrics" not in report and "micro_f1" not in table


def test_a_grey_dataset_in_a_colour_region_view_has_the_view_shape():
  """SAMM's stand-in stores grey frames; Le et al.'s RGB dynamic-image regions still take them."""
  data = ml_collections.ConfigDict(dict(
      view="dynamic_image", num_frames=4, size=16, grey=False, regions="dynamic_image",
      magnify_alpha=0.0))
  frames = np.random.default_rng(0).integers(0, 255, (6, 64, 64, 1), dtype=np.uint8)
  view = views.clip_view(frames, 0, 2, 5, data)
  assert view.shape == views.view_shape(data)
  colour = views.clip_view(np.repeat(frames, 3, axis=-1), 0, 2, 5, data)
  np.testing.assert_array_equal(view, colour)
