"""The paper experiments: their views, their configs' models, and training through mejax.train."""

import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mejax import analyze
from mejax import config_files
from mejax import models
from mejax import runs
from mejax import sweep
from mejax import train
from mejax import zoo
from mejax.data import views
from mejax.models import summary
from mejax.synthetic import faces as synthetic_faces
from mejax.synthetic import render

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"
PAPER_CONFIGS = [("stcnn.py", None), ("stcnn.py", "smoke"), ("fusenet.py", None),
                 ("fusenet.py", "late"), ("fusenet.py", "smoke"), ("model_a.py", None),
                 ("model_a.py", "split"), ("model_a.py", "model_b"), ("model_a.py", "model_c"),
                 ("model_a.py", "smoke"), ("strcn_g.py", None), ("strcn_g.py", "smoke"),
                 ("dynamic_image.py", None), ("dynamic_image.py", "resnet"),
                 ("dynamic_image.py", "smoke"), ("strcn_a.py", None), ("strcn_a.py", "smoke"),
                 ("model_a.py", "split,smoke"), ("model_a.py", "model_b,smoke"),
                 ("model_a.py", "model_c,smoke"), ("dynamic_image.py", "resnet,smoke"),
                 ("convlstm.py", "macro")]


def _data(**kw):
  base = dict(view="onset_apex", num_frames=6, size=32, grey=False, regions="",
              magnify_alpha=0.0, flow_range=4.0)
  base.update(kw)
  return ml_collections.ConfigDict(base)


@pytest.fixture(scope="module")
def clip():
  """A 64 px synthetic face, 12 frames, expression onset 2, apex 6, offset 9."""
  identity = synthetic_faces.sample_identity(np.random.default_rng(3))
  expression = render.Expression(aus=(12,), onset=2, apex=6, offset=9, amplitude_px=6.0)
  return render.render_clip(identity, expression, 12, 30.0, size=64, rng=0).frames


def test_temporal_selections_follow_the_papers(clip):
  assert views.temporal_indices("first_n", clip, 2, 6, 9, 5).tolist() == [2, 3, 4, 5, 6]
  assert views.temporal_indices("first_n", clip, 8, 9, 10, 6).tolist() == [8, 9, 10, 11, 11, 11]
  # apex-centred: D/2 before, D/2 after, edge frames repeated
  assert views.temporal_indices("apex_window", clip, 2, 6, 9, 4).tolist() == [4, 5, 6, 7]
  assert views.temporal_indices("apex_window", clip, 0, 1, 9, 6).tolist() == [0, 0, 0, 1, 2, 3]
  assert views.temporal_indices("uniform", clip, 2, 6, 9, 4).tolist() == [2, 4, 7, 9]
  assert views.temporal_indices("dynamic_image", clip, 2, 6, 9, 0).tolist() == list(range(2, 10))
  assert views.temporal_indices("flow", clip, 2, 6, 9, 0).tolist() == [2, 6]
  # SMIC (no apex): the frame most unlike the onset
  estimated = views.temporal_indices("flow", clip, 2, -1, 9, 0)[1]
  assert 4 <= estimated <= 8


@pytest.mark.parametrize("kw, shape", [
    (dict(view="first_n", grey=True), (6, 32, 32, 1)),
    (dict(view="apex_window", grey=True, regions="fusenet"), (6, 32, 32, 2)),
    (dict(view="dynamic_image", regions="dynamic_image"), (1, 32, 32, 9)),
    (dict(view="dynamic_image", magnify_alpha=8.0), (1, 32, 32, 3)),
    (dict(view="flow"), (1, 32, 32, 2)),
    (dict(view="flow", flow_strain=True), (1, 32, 32, 3)),
])
def test_paper_views_have_the_shape_view_shape_announces(clip, kw, shape):
  data = _data(**kw)
  assert views.view_shape(data) == shape
  out = views.clip_view(clip, 2, 6, 9, data)
  assert out.shape == shape and out.dtype == np.uint8


def test_flow_and_dynamic_image_views_show_motion_only(clip):
  still = np.repeat(clip[:1], 12, axis=0)
  flow = views.clip_view(still, 2, 6, 9, _data(view="flow"))
  # Farneback leaves ~0.1 px of noise on identical frames: 4 levels of 127.5 / 4 px.
  assert np.abs(flow.astype(int) - 128).max() <= 5
  moving = views.clip_view(clip, 2, 6, 9, _data(view="flow", flow_range=1.0))
  assert np.abs(moving.astype(int) - 128).max() > 50  # the smile moves the mouth corners ~1.5 px
  di = views.clip_view(clip, 2, 6, 9, _data(view="dynamic_image"))
  # min-max scaled to 0..255 at the stored size (the resize to 32 px then averages extremes)
  assert int(di.max()) - int(di.min()) > 100
  assert np.ptp(views.clip_view(still, 2, 6, 9, _data(view="dynamic_image"))) == 0  # no change


def test_unknown_view_settings_are_refused():
  with pytest.raises(ValueError, match="Unknown view 'optical'"):
    views.view_shape(_data(view="optical"))
  with pytest.raises(ValueError, match="Unknown data.regions 'mouth'"):
    views.view_shape(_data(regions="mouth"))
  with pytest.raises(ValueError, match="'flow' takes no data.regions"):
    views.view_shape(_data(view="flow", regions="fusenet"))


@pytest.mark.parametrize("file, preset", PAPER_CONFIGS)
def test_every_paper_config_builds_a_model_for_its_view(file, preset):
  config = config_files.load(CONFIGS / file, preset)
  model = models.from_config(config.model, 3, jnp.float32)
  result = summary.summarize(model, (1, *views.view_shape(config.data)))
  assert result["total_params"] > 0
  assert result["layers"][-1]["output_shape"] == (1, 3)
  sweep.input_transform(config.data)  # normalisation constants fit the view's channels


def test_summary_numbers_of_the_paper_tables():
  stcnn = config_files.load(CONFIGS / "stcnn.py")
  stcnn.data.num_frames = 96
  model = models.from_config(stcnn.model, 3, jnp.float32)
  assert summary.summarize(model, (1, *views.view_shape(stcnn.data)))["total_params"] == 44_241_667
  stcnn.data.num_frames = 18
  assert summary.summarize(model, (1, *views.view_shape(stcnn.data)))["total_params"] == 1_643_267
  stcnn.data.num_frames = 12
  with pytest.raises(ValueError, match="conv1: temporal kernel 15 larger than the 12 input frames"):
    summary.summarize(model, (1, *views.view_shape(stcnn.data)))


# Each trains a few steps through train_and_evaluate on synthetic_me/micro_tiny: the view, the
# model (dropout, no BatchNorm / BatchNorm), the optimiser, schedule and loss of its paper.
@pytest.mark.slow
@pytest.mark.parametrize("file, preset", [entry for name, entry in zoo.ZOO.items()
                                          if name != "convlstm_ae"])  # tests/test_train.py's
def test_paper_smoke_configs_train_and_evaluate(file, preset, tiny_data_dir, tmp_path):
  config = config_files.load(CONFIGS / file, preset)
  config.data.datasets = ("synthetic_me/micro_tiny",)
  config.data.data_dir = tiny_data_dir
  config.protocol.name = "kfold"
  config.protocol.k = 2
  config.protocol.grouped = True
  config.train.num_epochs = 2
  config.train.steps_per_epoch = 2
  config.train.batch_size = 4
  config.eval.every_epochs = 2
  config.train.fold_strategy = "vmap"
  config.mesh.num_devices = 2
  config.progress = False
  result = train.train_and_evaluate(config, str(tmp_path))
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  pooled = metrics["report"]["pooled"]
  assert 0.0 <= pooled["uar"] <= 1.0 and pooled["n"] > 0
  assert result["pooled"]["uar"] == pooled["uar"]  # the returned report is metrics.json's
  # Each fold restored alone and applied outside the sweep scores its test clips as the sweep
  # did (fold-sharded over 2 devices): the model computes the same thing in both programs.
  run = runs.load(tmp_path)
  clips, view = run.data()
  predictions, _ = analyze.recompute(run, view)
  assert "equal to predictions.csv" in analyze.check_against_csv(run, clips, predictions)
  history = metrics["history"]
  assert len(history) == 2 and all(np.isfinite(h["train_loss"]) for h in history)


def test_strcn_a_pixel_selection_sees_only_the_folds_training_clips():
  from mejax.models import strcn
  rng = np.random.default_rng(0)
  view = rng.integers(0, 20, (4, 5, 6, 6, 1)).astype(np.uint8)
  view[:, 1:, 2, 3] += 200            # every clip changes most at pixel (2, 3) = raster 15
  train = np.asarray([[True, True, True, False], [False, True, True, True]])
  index = strcn.select_pixels(view, train, 3)
  assert index.shape == (2, 3) and (np.diff(index, axis=1) > 0).all()  # raster order
  assert (index == 15).any(axis=1).all()
  # A test clip (fold 0 does not train on clip 3) cannot move fold 0's selection.
  changed = view.copy()
  changed[3, 1:, 0, 0] = 255
  again = strcn.select_pixels(changed, train, 3)
  np.testing.assert_array_equal(again[0], index[0])
  assert 0 in again[1]  # fold 1 trains on clip 3: its selection follows it


def test_strcn_a_gathers_the_selected_pixels_as_a_pixels_by_time_image():
  from mejax.models import strcn
  model = strcn.STRCNAppearanceFrames(num_pixels=200, features=4,
                                      pool_windows=((2, 1), (2, 1), (2, 2), (2, 2)))
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 12, 16, 16, 3)), jnp.float32)
  variables = model.init(jax.random.key(0), x, train=False)
  assert variables["constants"][strcn.PIXEL_INDEX].shape == (200,)
  chosen = np.sort(np.random.default_rng(2).choice(256, 200, replace=False)).astype(np.int32)
  variables = {"params": variables["params"], "batch_stats": variables["batch_stats"],
               "constants": {strcn.PIXEL_INDEX: jnp.asarray(chosen)}}
  logits = model.apply(variables, x, train=False)
  # The same network on the matrix built by hand gives the same logits.
  matrix = np.asarray(x).reshape(2, 12, 256, 3)[:, :, chosen].transpose(0, 2, 1, 3)[:, None]
  inner = {"params": variables["params"]["strcn"],
           "batch_stats": variables["batch_stats"]["strcn"]}
  reference = strcn.STRCN(features=4, variant="appearance",
                          pool_windows=((2, 1), (2, 1), (2, 2), (2, 2))).apply(
                              inner, jnp.asarray(matrix), train=False)
  np.testing.assert_allclose(np.asarray(logits), np.asarray(reference), atol=1e-5)


def test_frame_subset_keeps_an_ordered_subset_stretched_to_the_clip_length():
  from mejax.data import on_device
  clips = jnp.broadcast_to(jnp.arange(8, dtype=jnp.float32)[None, :, None, None, None],
                           (16, 8, 2, 2, 1))
  same = on_device.frame_subset(jax.random.key(0), clips, (1.0,))
  np.testing.assert_array_equal(np.asarray(same), np.asarray(clips))
  half = np.asarray(on_device.frame_subset(jax.random.key(1), clips, (0.5,)))[:, :, 0, 0, 0]
  for frames in half:
    assert (np.diff(frames) >= 0).all()                 # time order kept
    assert len(set(frames.tolist())) == 4               # 4 of the 8 frames, each shown twice
  assert len({tuple(f) for f in half.tolist()}) > 1     # a different subset per clip
  mixed = np.asarray(on_device.frame_subset(jax.random.key(2), clips,
                                            (1.0, 0.6)))[:, :, 0, 0, 0]
  assert {len(set(f)) for f in mixed.tolist()} == {8, 5}  # round(0.6 * 8) = 5


def test_training_sets_each_folds_pixel_selection_from_its_training_clips():
  """The sweep asks the model registry for per-fold constants: STRCN-A's pixel selection, from
  each lane's training clips only, in the `constants` collection."""
  from mejax import sharding
  from mejax.models import strcn
  config = config_files.load(CONFIGS / "strcn_a.py", "smoke")
  config.data.size, config.data.num_frames, config.model.num_pixels = 16, 12, 20
  config.model.pool_windows = ((2, 1), (2, 1), (1, 1), (1, 1))
  view = np.random.default_rng(0).integers(0, 255, (5, 12, 16, 16, 3)).astype(np.uint8)
  train_mask = np.asarray([[True, True, True, False, False], [False, False, True, True, True]])
  s = sweep.build(config, 3, view.shape[1:], mesh=sharding.make_mesh(1, jax.devices()[:1]),
                  labels=np.asarray([0, 1, 2, 0, 1]), train_mask=train_mask, fold_ids=[0, 1])
  state = s.init_state(view)
  assert strcn.PIXEL_INDEX not in state.batch_stats
  np.testing.assert_array_equal(np.asarray(state.constants[strcn.PIXEL_INDEX]),
                                strcn.select_pixels(view, train_mask, 20))


def test_magnified_views_filter_the_stored_span_then_select_frames(clip):
  from mejax.preprocess import magnify
  view = views.clip_view(clip, 2, 6, 9, _data(view="uniform", num_frames=4, size=64,
                                              magnify_alpha=8.0))
  span = magnify.magnify(clip[2:10], 8.0)            # onset..offset at the stored frame rate
  expected = span[np.rint(np.linspace(0, 7, 4)).astype(int)]
  np.testing.assert_array_equal(view, expected)
  # Selecting first and magnifying the 4 frames would amplify another temporal frequency.
  assert not np.array_equal(view, magnify.magnify(clip[[2, 4, 7, 9]], 8.0))


def test_view_variants_give_each_sample_a_random_variant():
  from mejax.data import on_device
  # Variant k of sample n holds the value 10 k + n.
  inputs = (10 * jnp.arange(4)[:, None] + jnp.arange(6)[None]).astype(jnp.uint8)
  inputs = jnp.broadcast_to(inputs[:, :, None, None, None, None], (4, 6, 2, 3, 3, 1))
  idx = jnp.asarray([5, 0, 3] * 20)
  clips = np.asarray(on_device.gather_clips(jax.random.key(0), inputs, idx, True))
  assert clips.shape == (60, 2, 3, 3, 1)
  values = clips[:, 0, 0, 0, 0].astype(int)
  np.testing.assert_array_equal(values % 10, np.asarray(idx))      # the drawn samples
  assert set((values // 10).tolist()) == {0, 1, 2, 3}                # every variant drawn
  plain = on_device.gather_clips(jax.random.key(0), inputs[1], idx, False)
  np.testing.assert_array_equal(np.asarray(plain)[:, 0, 0, 0, 0], 10 + np.asarray(idx))


def test_smoothing_blurs_the_chosen_clips_and_keeps_the_rest():
  from mejax.data import on_device
  rng = np.random.default_rng(0)
  clips = jnp.asarray(rng.normal(size=(64, 2, 12, 12, 1)), jnp.float32)
  same = on_device.smooth(jax.random.key(0), clips, 0.0, 1.5)
  np.testing.assert_array_equal(np.asarray(same), np.asarray(clips))
  out = np.asarray(on_device.smooth(jax.random.key(0), clips, 0.5, 1.5))
  changed = ~np.all(out == np.asarray(clips), axis=(1, 2, 3, 4))
  assert 16 < changed.sum() < 48                           # about half the clips
  roughness = lambda x: np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3, 4))
  assert (roughness(out[changed]) < 0.8 * roughness(np.asarray(clips)[changed])).all()
  # A blur of a constant frame is the frame (weights sum to 1, edges repeated).
  flat = jnp.full((4, 1, 6, 6, 3), 0.3)
  np.testing.assert_allclose(np.asarray(on_device.smooth(jax.random.key(1), flat, 1.0, 1.5)), 0.3,
                             atol=1e-6)
  # Each clip is blurred with one kernel over all of its frames.
  clip = jnp.broadcast_to(clips[:1, :1], (1, 3, 12, 12, 1))
  blurred = np.asarray(on_device.smooth(jax.random.key(2), clip, 1.0, 1.5))
  np.testing.assert_array_equal(blurred[0, 0], blurred[0, 2])


@pytest.mark.slow
def test_convlstm_macro_preset_trains_with_smoothing_on_a_hold_out(tiny_data_dir, tmp_path):
  config = config_files.load(CONFIGS / "convlstm.py", "macro")
  assert config.train.smooth_probability > 0 and config.protocol.name == "holdout"
  config.data.datasets = ("synthetic_me/micro_tiny",)   # the macro datasets are licensed
  config.data.data_dir = tiny_data_dir
  config.data.size, config.data.num_frames = 16, 4
  config.model.width_multiplier = 1 / 32
  config.train.num_epochs, config.train.steps_per_epoch, config.train.batch_size = 2, 2, 4
  config.eval.every_epochs = 1
  config.progress = False
  train.train_and_evaluate(config, str(tmp_path))
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  folds = json.loads((tmp_path / "folds.json").read_text())
  assert len(metrics["history"]) == 2
  assert all(np.isfinite(h["val_loss"]) for h in metrics["history"])
  (fold,) = folds["folds"]                                # one 80/20 split
  assert len(fold["val"]) > 0 and not set(fold["val"]) & set(fold["test"])
  assert metrics["report"]["pooled"]["n"] == len(fold["test"])
  assert len(fold["test"]) == round(0.2 * len(folds["sample_ids"]))


def test_flow_view_channels_are_the_flow_and_its_strain(clip):
  from mejax.preprocess import flow
  data = _data(view="flow", flow_strain=True, strain_range=0.5)
  view = views.clip_view(clip, 2, 6, 9, data)[0]
  small = views.resize_frames(clip[[2, 6]], 32, grey=True)
  field = flow.optical_flow(small[0], small[1])
  np.testing.assert_array_equal(view[..., :2], views.flow_to_uint8(field, 4.0))
  strain = flow.optical_strain(field)
  np.testing.assert_array_equal(view[..., 2], np.rint(255 * np.clip(strain / 0.5, 0, 1)))
  assert view[..., 2].max() > 0      # the expression strains the face
  with pytest.raises(ValueError, match="flow_method 'lk'"):
    views.view_shape(_data(view="flow", flow_method="lk"))


def test_tvl1_flow_view_runs_where_opencv_contrib_is_installed(clip):
  from mejax.preprocess import flow
  data = _data(view="flow", flow_method="tvl1")
  if not flow.tvl1_available():
    with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
      views.clip_view(clip, 2, 6, 9, data)
    pytest.skip("TV-L1 needs opencv-contrib (cv2.optflow); the error above names it")
  view = views.clip_view(clip, 2, 6, 9, data)[0]
  farneback = views.clip_view(clip, 2, 6, 9, _data(view="flow"))[0]
  assert view.shape == farneback.shape and not np.array_equal(view, farneback)
  # Both methods see the same motion: their fields agree in direction where it is large.
  u = lambda v: v[..., :2].astype(float) - 127.5
  moving = np.linalg.norm(u(farneback), axis=-1) > 20
  assert moving.sum() > 10
  cosine = (u(view) * u(farneback)).sum(-1)[moving] / (
      np.linalg.norm(u(view), axis=-1)[moving] * np.linalg.norm(u(farneback), axis=-1)[moving]
      + 1e-9)
  assert np.median(cosine) > 0.5


def test_presets_combine_a_variant_with_smoke_and_refuse_unknown_ones():
  split = config_files.load(CONFIGS / "model_a.py", "split,smoke")
  assert split.model.name == "split_model" and split.data.size == 32
  assert split.data.datasets == ("synthetic_me/micro",)
  assert config_files.load(CONFIGS / "model_a.py", "smoke,split").to_dict() == split.to_dict()
  for bad in ("smoke,nope", "split,model_c", "smoke,smoke"):
    with pytest.raises(ValueError, match=r"configs/model_a.py; known: split, model_b, model_c, "
                                         r"smoke or VARIANT,smoke"):
      config_files.load(CONFIGS / "model_a.py", bad)


@pytest.mark.parametrize("key, value, message", [
    ("train.smooth_probability", 1.5, r"train.smooth_probability=1.5 must be in \[0, 1\]"),
    ("train.smooth_sigma", 0.2, r"train.smooth_sigma=0.2 >= 0.5"),
    ("data.train_magnify_alphas", (5.0, -1.0), r"train_magnify_alphas must be >= 0, got \[-1.0\]"),
])
def test_bad_augmentation_settings_are_refused_before_training(tiny_data_dir, tmp_path, key,
                                                               value, message):
  config = config_files.load(CONFIGS / "convlstm.py", "macro")
  config.data.datasets = ("synthetic_me/micro_tiny",)
  config.data.data_dir = tiny_data_dir
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()
