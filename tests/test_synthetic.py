"""Tests of the synthetic_me renderer, generator, TFDS builder and calibration."""

import collections
import dataclasses

import cv2
import numpy as np
import pytest

from mejax.data import schema
from mejax.synthetic import calibration
from mejax.synthetic import faces
from mejax.synthetic import generate
from mejax.synthetic import motion
from mejax.synthetic import render

MICRO = generate.PRESETS["micro"]
MACRO = generate.PRESETS["macro"]
TINY = generate.PRESETS["micro_tiny"]


@pytest.fixture(scope="module")
def tiny_samples():
  return list(generate.generate_samples(TINY))


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
  plan = generate.plan_dataset(TINY)[3]
  first = generate.render_plan(plan, TINY)
  again = generate.render_plan(generate.plan_dataset(TINY)[3], TINY)
  assert first.tobytes() == again.tobytes()

  other_config = dataclasses.replace(TINY, seed=TINY.seed + 1)
  other = generate.render_plan(generate.plan_subject(other_config, plan.subject_index)[0],
                               other_config)
  assert first.shape[1:] == other.shape[1:]
  assert not np.array_equal(first[0], other[0])


def test_a_clip_does_not_depend_on_other_subjects_or_clips():
  small = dataclasses.replace(TINY, n_subjects=3, clips_per_subject=(3, 3))
  plan = generate.plan_subject(small, 2)[1]
  twin = generate.plan_subject(TINY, 2)[1]
  assert plan == twin
  np.testing.assert_array_equal(generate.render_plan(plan, small), generate.render_plan(twin, TINY))


def test_frame_subset_matches_full_render():
  plan = generate.plan_dataset(TINY)[0]
  full = generate.render_plan(plan, TINY)
  some = generate.render_plan(plan, TINY, [plan.expression.apex, 0])
  np.testing.assert_array_equal(some, full[[plan.expression.apex, 0]])


def test_subjects_look_clearly_different():
  neutral = [faces.render_face(generate.subject_identity(MICRO, s), 64) for s in range(8)]
  between = [np.abs(a - b).mean() for i, a in enumerate(neutral) for b in neutral[i + 1:]]
  assert min(between) > 12.0, between
  # Identity survives pose, lighting, motion and noise: the nearest neighbour of a clip's
  # brightness-normalised 16x16 onset frame is another clip of the same subject.
  descriptors, subjects = [], []
  for subject in range(8):
    for plan in generate.plan_subject(MICRO, subject)[:2]:
      frame = generate.render_plan(plan, MICRO, [plan.expression.onset])[0]
      small = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32), (16, 16),
                         interpolation=cv2.INTER_AREA).ravel()
      descriptors.append((small - small.mean()) / small.std())
      subjects.append(subject)
  descriptors, subjects = np.array(descriptors), np.array(subjects)
  distances = ((descriptors[:, None] - descriptors[None]) ** 2).sum(-1)
  np.fill_diagonal(distances, np.inf)
  assert (subjects[distances.argmin(1)] == subjects).all()


@pytest.mark.parametrize("config", [MICRO, MACRO], ids=["micro", "macro"])
def test_class_balance_and_independence_from_subject(config):
  plans = generate.plan_dataset(config)
  labels = np.array([generate.class_index(p) for p in plans])
  np.testing.assert_allclose(np.bincount(labels, minlength=3) / len(labels), config.class_probs,
                             atol=0.04)
  # Every subject shows several classes (all three with >= 8 clips): identity does not tell class.
  for subject in range(config.n_subjects):
    subject_labels = [generate.class_index(p) for p in plans if p.subject_index == subject]
    assert len(set(subject_labels)) == (3 if len(subject_labels) >= 8 else 2) or \
        len(set(subject_labels)) == 3, (subject, subject_labels)
  assert {p.expression_type.aus for p in plans} == {t.aus for t in generate.EXPRESSION_TYPES}


def test_micro_timing_follows_the_spec():
  plans = generate.plan_dataset(MICRO)
  assert {p.fps for p in plans} == set(MICRO.fps_sources)
  for p in plans:
    e = p.expression
    assert 0 < e.onset < e.apex < e.offset < p.n_frames, p.sample_id
    assert 0.2 - 1.0 / p.fps <= (e.offset - e.onset) / p.fps <= 0.5, p.sample_id
    low, high = MICRO.amplitude_range()
    assert low <= e.amplitude_px <= high
  assert MICRO.amplitude_range() == (0.5 / MICRO.difficulty, 2.0 / MICRO.difficulty)


def test_macro_timing_follows_the_spec():
  plans = generate.plan_dataset(MACRO)
  assert {p.fps for p in plans} == set(MACRO.fps_sources)
  for p in plans:
    e = p.expression
    assert 0 < e.onset < e.apex <= e.offset == p.n_frames - 1, p.sample_id
    assert not e.release  # posed onset -> peak, apex held to the last frame
    assert 2.0 * 0.35 - 0.1 <= (e.apex - e.onset) / p.fps <= 4.0 * 0.5, p.sample_id
    assert 4.0 <= e.amplitude_px <= 8.0


def test_timing_does_not_depend_on_class():
  plans = generate.plan_dataset(MICRO)
  labels = np.array([generate.class_index(p) for p in plans])
  for value in (lambda p: p.n_frames / p.fps, lambda p: p.expression.onset / p.fps,
                lambda p: (p.expression.apex - p.expression.onset) / p.fps,
                lambda p: p.expression.amplitude_px):
    values = np.array([value(p) for p in plans])
    means = [values[labels == c].mean() for c in range(3)]
    standard_error = values.std() / np.sqrt(np.bincount(labels).min())
    assert np.ptp(means) < 4.0 * standard_error + 1e-9, means


def test_micro_apex_displacement_follows_the_calibrated_range():
  # SYNTHETIC.md's 0.5-2 px at difficulty 1, divided by the calibrated micro difficulty.
  low, high = 0.5 / MICRO.difficulty, 2.0 / MICRO.difficulty
  for plan in generate.plan_dataset(MICRO)[:20]:
    e = plan.expression
    field = motion.au_motion_field(plan.identity, e.aus, 128, e.intensities)
    profile = motion.expression_profile(plan.n_frames, e.onset, e.apex, e.offset)
    peak = np.linalg.norm(field * e.amplitude_px * profile[e.apex], axis=-1).max()
    assert 0.9 * low <= peak <= high, (plan.sample_id, peak)
    assert profile[e.onset] == 0.0 and profile[e.offset] == 0.0 and profile[e.apex] == 1.0
    # Without nuisance the rendered landmarks move by the same amounts.
    clip = render.render_clip(plan.identity, e, plan.n_frames, plan.fps, size=128,
                              nuisance=motion.Nuisance.none(), frame_indices=[e.onset, e.apex])
    moved = np.linalg.norm(clip.landmarks[1] - clip.landmarks[0], axis=-1).max()
    assert moved <= e.amplitude_px + 1e-4


@pytest.mark.parametrize("aus", [(1, 2), (12,), (15, 17)])
def test_sub_pixel_motion_survives_rendering(aus):
  # For a 0.5 px expression, apex - neutral must match the linearised warp -grad(I) . u with
  # u = the AU field: the fitted scale of u is ~1, so the motion is neither lost nor exaggerated.
  identity = faces.sample_identity(np.random.default_rng(7))
  expression = render.Expression(aus=aus, onset=1, apex=5, offset=9, amplitude_px=0.5)
  clip = render.render_clip(identity, expression, 10, 60.0, nuisance=motion.Nuisance.none(),
                            grey=True)
  assert clip.frames.shape == (10, 128, 128, 1)
  neutral, apex = (clip.frames[i, ..., 0].astype(np.float64) for i in (0, 5))
  grad_y, grad_x = np.gradient(neutral)
  field = motion.au_motion_field(identity, aus, 128) * expression.amplitude_px
  moving = np.linalg.norm(field, axis=-1) > 0.15
  predicted = -(grad_x * field[..., 0] + grad_y * field[..., 1])[moving]
  observed = (apex - neutral)[moving]
  scale = (observed * predicted).sum() / (predicted ** 2).sum()
  assert 0.8 <= scale <= 1.2, scale


def test_records_match_the_schema(tiny_samples):
  features = schema.clip_features(TINY.size, TINY.size, 3)
  expected_keys = set(features.keys())
  for sample in tiny_samples:
    assert set(sample) == expected_keys
    for key in (schema.SAMPLE_ID, schema.DATASET, schema.SUBJECT, schema.EMOTION,
                schema.ACTION_UNITS):
      assert isinstance(sample[key], str)
    for key in (schema.OBJECTIVE_CLASS, schema.ONSET, schema.APEX, schema.OFFSET):
      assert isinstance(sample[key], int)
    assert isinstance(sample[schema.FPS], float)
    frames = sample[schema.FRAMES]
    assert frames.dtype == np.uint8 and frames.shape[1:] == (64, 64, 3)
    assert sample[schema.SOURCE_FRAMES].shape == (len(frames),)
    assert 0 <= sample[schema.ONSET] <= sample[schema.APEX] <= sample[schema.OFFSET] < len(frames)
    assert sample[schema.SAMPLE_ID].startswith(sample[schema.SUBJECT] + "_")
    assert sample[schema.DATASET] == "synthetic_me"
    assert generate.class_index(sample) in (0, 1, 2)
    assert 1 <= sample[schema.OBJECTIVE_CLASS] <= 7
    assert sample[schema.THREE_CLASS] == generate.CLASS_NAMES[generate.class_index(sample)]
    for index, original in ((schema.ONSET, schema.ONSET_FRAME), (schema.APEX, schema.APEX_FRAME),
                            (schema.OFFSET, schema.OFFSET_FRAME)):
      assert sample[original] == sample[schema.SOURCE_FRAMES][sample[index]]
  features.encode_example(tiny_samples[0])  # tfds accepts the record as is
  assert len({s[schema.SAMPLE_ID] for s in tiny_samples}) == len(tiny_samples)


def test_tfds_build_reads_back_the_generated_samples(tiny_samples, tmp_path):
  import tensorflow_datasets as tfds
  import tfds_builders.synthetic_me  # noqa: F401  (registers the builder)

  builder = tfds.builder("synthetic_me/micro_tiny", data_dir=str(tmp_path))
  builder.download_and_prepare()
  assert builder.info.splits["train"].num_examples == len(tiny_samples)
  expected = {s[schema.SAMPLE_ID]: s for s in tiny_samples}
  seen = set()
  for record in tfds.as_numpy(builder.as_dataset(split="train")):
    sample_id = record[schema.SAMPLE_ID].decode()
    sample = expected[sample_id]
    seen.add(sample_id)
    np.testing.assert_array_equal(record[schema.FRAMES], sample[schema.FRAMES])
    np.testing.assert_array_equal(record[schema.SOURCE_FRAMES], sample[schema.SOURCE_FRAMES])
    for key in schema.METADATA_KEYS:
      value = record[key]
      value = value.decode() if isinstance(value, bytes) else value.item()
      assert value == pytest.approx(sample[key]) if key == schema.FPS else value == sample[key]
  assert seen == set(expected)


def test_grey_option():
  config = dataclasses.replace(TINY, grey=True)
  plan = generate.plan_dataset(config)[0]
  assert generate.render_plan(plan, config, [0]).shape == (1, 64, 64, 1)


def test_single_apex_frames_carry_no_class_signal_but_differences_do():
  # Full micro config, rendering only the onset and apex frame of each clip.
  frames, labels, subjects = calibration.onset_apex_frames(MICRO)
  onsets, apexes = np.zeros(len(frames), int), np.ones(len(frames), int)
  apex_uar = calibration.apex_frame_logreg_uar(frames, apexes, labels, subjects)
  difference_uar = calibration.difference_logreg_uar(frames, onsets, apexes, labels, subjects)
  assert apex_uar <= 0.50, apex_uar
  assert difference_uar >= 0.48, difference_uar


def test_megc_sized_corpus_has_the_composites_442_clips_of_68_subjects():
  plans = generate.plan_dataset(generate.PRESETS["megc_sized"])
  per_subject = collections.Counter(p.subject for p in plans)
  assert len(plans) == 442 and len(per_subject) == 68
  assert sorted(set(per_subject.values())) == [6, 7]
  # Every class occurs (the 68-fold LOSO sweep trains a 3-class model).
  assert {generate.class_index(p) for p in plans} == {0, 1, 2}
