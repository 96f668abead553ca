"""ClipSet, label maps, views and the on-device sampling / augmentation."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mejax.data import clipset as clipset_lib
from mejax.data import labels as labels_lib
from mejax.data import on_device
from mejax.data import schema
from mejax.data import views


def _record(sample_id, emotion, subject="s1", dataset="toy", n=20, onset=2, apex=9, offset=15,
            objective_class=0):
  frames = np.full((n, 8, 8, 3), 0, np.uint8)
  frames[:, 0:2, 0:2, 0] = np.arange(n)[:, None, None]  # frame number in the top-left 2x2 block
  return {schema.SAMPLE_ID: sample_id.encode(), schema.DATASET: dataset.encode(),
          schema.SUBJECT: subject.encode(), schema.EMOTION: emotion.encode(),
          schema.ACTION_UNITS: b"4", schema.OBJECTIVE_CLASS: objective_class,
          schema.FPS: 100.0, schema.ONSET: onset, schema.APEX: apex, schema.OFFSET: offset,
          schema.SOURCE_FRAMES: np.arange(n), schema.FRAMES: frames}


def test_label_map_drops_and_records_unmapped_emotions():
  records = [_record("a", "happiness"), _record("b", "others"), _record("c", "Repression"),
             _record("d", "surprise")]
  clips = clipset_lib.from_records(records, labels_lib.get_label_map("megc2019"))
  assert clips.sample_id.tolist() == ["a", "c", "d"]
  assert clips.label.tolist() == [1, 0, 2]
  assert len(clips.dropped) == 1
  assert clips.dropped[0]["sample_id"] == "b" and "others" in clips.dropped[0]["reason"]


def test_islam_label_map_uses_objective_classes_except_smic():
  lmap = labels_lib.get_label_map("islam2022")
  assert lmap.assign("repression", 1, "casme2") == 1     # objective class I -> positive
  assert lmap.assign("happiness", 7, "samm") is None      # objective class VII (others) dropped
  assert lmap.assign("negative", 0, "smic_hs") == 0
  assert lmap.assign("fear", 0, "ck_plus") is None        # macro data: fear is not in the map
  with pytest.raises(ValueError, match="known label maps"):
    labels_lib.get_label_map("nope")


def test_concatenate_keeps_subjects_apart_and_rejects_duplicates():
  lmap = labels_lib.get_label_map("megc2019")
  a = clipset_lib.from_records([_record("x", "happiness", subject="sub01", dataset="casme2")], lmap)
  b = clipset_lib.from_records([_record("x", "surprise", subject="sub01", dataset="samm")], lmap)
  both = clipset_lib.concatenate([a, b])
  assert len(both) == 2
  assert both.subject_key.tolist() == ["casme2/sub01", "samm/sub01"]
  with pytest.raises(ValueError, match="Duplicate sample ids"):
    clipset_lib.concatenate([a, a])
  assert both.subset(np.array([False, True])).dataset.tolist() == ["samm"]


@pytest.mark.parametrize("onset,apex,expected", [
    (2, 5, [2, 3, 4, 5, 5, 5]),          # short span: padded with the apex frame
    (0, 10, [0, 2, 4, 6, 8, 10]),        # long span: equal intervals, onset and apex kept
    (3, 3, [3, 3, 3, 3, 3, 3]),
])
def test_onset_to_apex_indices(onset, apex, expected):
  assert views.onset_to_apex_indices(onset, apex, 99, 6).tolist() == expected


def test_onset_to_apex_uses_offset_when_apex_missing_and_rejects_bad_spans():
  assert views.onset_to_apex_indices(0, -1, 3, 5).tolist() == [0, 1, 2, 3, 3]
  with pytest.raises(ValueError):
    views.onset_to_apex_indices(5, 2, 9, 4)


def _view_config(**keys):
  return ml_collections.ConfigDict(dict(view="onset_apex", **keys))


def test_view_selects_frames_and_resizes():
  clips = clipset_lib.from_records([_record("a", "happiness", onset=2, apex=5)],
                                   labels_lib.get_label_map("megc2019"))
  clips.frames[0][:, :, :, 1] = 200
  v = views.make_view(clips, _view_config(num_frames=6, size=4, grey=False))
  assert v.shape == (1, 6, 4, 4, 3) and v.dtype == np.uint8
  # Area resize of 8 -> 4 averages 2x2 blocks: pixel (0, 0) still carries the frame number.
  np.testing.assert_array_equal(v[0, :, 0, 0, 0], [2, 3, 4, 5, 5, 5])
  assert (v[..., 1] == 200).all()
  assert views.make_view(clips, _view_config(num_frames=6, size=4, grey=True)).shape == (
      1, 6, 4, 4, 1)


def test_view_names_clip_with_out_of_range_annotation():
  clips = clipset_lib.from_records([_record("bad", "happiness", n=5, onset=1, apex=8)],
                                   labels_lib.get_label_map("megc2019"))
  with pytest.raises(ValueError, match="toy/bad"):
    views.make_view(clips, _view_config(num_frames=4, size=4, grey=False))


def test_class_weights_stay_finite_when_a_fold_lacks_a_class():
  labels = np.array([0, 0, 0, 1, 2, 2])
  masks = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], bool)
  counts = on_device.class_counts(labels, masks, 3)
  np.testing.assert_array_equal(counts, [[3, 1, 2], [3, 0, 0]])
  w = on_device.inverse_frequency_weights(counts)
  assert np.isfinite(w).all()
  np.testing.assert_allclose(w[0], [6 / 9, 6 / 3, 6 / 6])
  np.testing.assert_allclose(w[1], [1, 0, 0])


def test_sampling_never_draws_outside_the_training_mask_and_balances_classes():
  labels = np.array([0] * 90 + [1] * 10 + [2] * 5)
  train = np.ones((1, len(labels)), bool)
  train[0, -5:] = False  # class 2 held out
  train[0, :3] = False
  counts = on_device.class_counts(labels, train, 3)
  p = on_device.sampling_probabilities(labels, train, counts, balanced=True)
  assert p[0, ~train[0]].sum() == 0
  idx = np.asarray(on_device.sample_indices(jax.random.PRNGKey(0), jnp.asarray(p[0]), 20000))
  assert train[0, idx].all()
  share_minority = (labels[idx] == 1).mean()
  assert 0.45 < share_minority < 0.55  # two classes present, drawn equally often
  with pytest.raises(ValueError, match="no training samples"):
    on_device.sampling_probabilities(labels, np.zeros_like(train), counts, balanced=True)


def test_augmentation_flips_and_rotates_whole_clips():
  clip = np.zeros((1, 3, 9, 9, 1), np.float32)
  clip[..., 4, 0:3, 0] = 1.0  # a bar on the left half
  flipped = np.asarray(on_device.augment(jax.random.PRNGKey(1), jnp.asarray(np.repeat(clip, 64, 0)),
                                         flip=True, rotate_degrees=0.0))
  left = flipped[:, :, 4, 0, 0] == 1
  right = flipped[:, :, 4, 8, 0] == 1
  assert (left ^ right).all()                       # every clip is either flipped or not
  assert 10 < right[:, 0].sum() < 54                 # about half flipped
  assert (left.all(1) | right.all(1)).all()          # all frames of a clip alike
  same = on_device.augment(jax.random.PRNGKey(1), jnp.asarray(clip), flip=False, rotate_degrees=0.0)
  np.testing.assert_array_equal(np.asarray(same), clip)
  rotated = np.asarray(on_device.augment(jax.random.PRNGKey(2), jnp.asarray(clip), flip=False,
                                         rotate_degrees=8.0))
  assert rotated.shape == clip.shape
  assert not np.allclose(rotated, clip)
  assert abs(rotated.sum() - clip.sum()) < 0.5     # bilinear rotation keeps the mass
  np.testing.assert_array_equal(rotated[:, 0], rotated[:, 1])


def test_rotation_by_zero_angle_is_identity():
  clip = jax.random.uniform(jax.random.PRNGKey(3), (2, 5, 7, 3))
  out = on_device._rotate_clip(clip, jnp.float32(0.0))
  np.testing.assert_allclose(np.asarray(out), np.asarray(clip), atol=1e-6)


def test_input_relative_to_first_frame_keeps_only_what_moved():
  rng = np.random.default_rng(0)
  face = rng.integers(0, 255, (2, 1, 8, 8, 3))  # room for +1
  clips = np.repeat(face, 4, axis=1).astype(np.uint8)
  clips[:, 2:, 3, 4] += 1  # one pixel brightens from frame 2 on
  mean, std = views.KINETICS_MEAN, views.KINETICS_STD
  absolute = np.asarray(on_device.InputTransform(mean, std)(jnp.asarray(clips)))
  np.testing.assert_allclose(absolute, on_device.normalise(clips, mean, std), atol=1e-6)
  relative = np.asarray(on_device.InputTransform(mean, std, relative_to_first_frame=True)(
      jnp.asarray(clips)))
  moved = np.zeros(clips.shape, bool)
  moved[:, 2:, 3, 4] = True
  np.testing.assert_allclose(relative[~moved], 0.0, atol=1e-6)   # the static face is gone
  np.testing.assert_allclose(relative[moved], (1 / 255 / np.broadcast_to(std, (2, 2, 3))).ravel(),
                             rtol=1e-4)
  # Flip and rotation are the same for every frame: augmenting before or after is the same.
  key = jax.random.PRNGKey(4)
  before = on_device.augment(key, jnp.asarray(relative), flip=True, rotate_degrees=8.0)
  augmented = on_device.augment(key, on_device.normalise(clips, mean, std), flip=True,
                                rotate_degrees=8.0)
  np.testing.assert_allclose(np.asarray(before), np.asarray(augmented - augmented[:, :1]),
                             atol=1e-5)


@pytest.mark.parametrize("config", ["convlstm.py:smoke", "strcn_a.py:smoke", "strcn_g.py:smoke",
                                    "dynamic_image.py:smoke"])
def test_a_view_does_not_depend_on_the_number_of_workers(tiny_data_dir, config):
  """Views are computed by several threads (magnification, flow, dynamic images): the same
  array as one thread computes, clip for clip."""
  import pathlib

  from mejax import config_files
  file, preset = config.split(":")
  data = config_files.load(pathlib.Path(__file__).parents[1] / "configs" / file, preset).data
  data.data_dir = tiny_data_dir
  data.datasets = ("synthetic_me/micro_tiny",)
  clips = clipset_lib.load(data.datasets, tiny_data_dir, data.label_map)
  alone = views.make_view(clips, data, workers=1)
  assert alone.shape == (len(clips), *views.view_shape(data))
  np.testing.assert_array_equal(views.make_view(clips, data, workers=3), alone)
