"""Stand-ins of the licensed datasets in synthetic_me, and swapping datasets for them by name."""

import collections
import dataclasses
import hashlib
import itertools

import ml_collections
import numpy as np
import pytest

from mejax.annotations import casme
from mejax.annotations import casme2
from mejax.annotations import casme_sq
from mejax.annotations import ckplus
from mejax.annotations import mug
from mejax.annotations import oulu_casia
from mejax.annotations import records
from mejax.annotations import samm
from mejax.annotations import smic
from mejax.data import schema
from mejax.data import stand_ins
from mejax.synthetic import corpora
from mejax.synthetic import generate

STAND_INS = corpora.STAND_INS
MICRO_STAND_INS = ("casme", "casme2", "casme_sq", "smic_hs", "smic_vis", "smic_nir", "samm")
# The words each real parser can emit (ckplus: "neutral" is a code no labelled sequence has).
PARSER_WORDS = {
    "casme": casme.EMOTIONS, "casme2": casme2.EMOTIONS, "casme_sq": casme_sq.EMOTIONS,
    "smic": smic.CLASSES, "samm": samm.EMOTIONS, "ckplus": ckplus.EMOTIONS, "mug": mug.EMOTIONS,
    "oulu_casia": oulu_casia.EMOTIONS,
}


@pytest.fixture(scope="module")
def plans():
  return {name: generate.plan_dataset(s.config) for name, s in STAND_INS.items()}


def test_every_licensed_dataset_has_a_stand_in_config():
  import tfds_builders.synthetic_me as builder

  assert tuple(STAND_INS) == stand_ins.STAND_IN_CONFIGS
  assert {s.real.builder for s in STAND_INS.values()} == set(stand_ins.LICENSED_DATASETS)
  names = {c.name for c in builder.Builder.BUILDER_CONFIGS}
  assert set(STAND_INS) | {"micro", "macro", "megc_sized", "micro_tiny"} == names


@pytest.mark.parametrize("name", list(STAND_INS))
def test_stand_in_has_its_real_datasets_shape(name, plans):
  real, config = STAND_INS[name].real, STAND_INS[name].config
  clips = plans[name]
  per_subject = collections.Counter(p.subject for p in clips)
  assert tuple(per_subject) == real.subjects  # plan order = the dataset's subject order
  assert tuple(per_subject.values()) == real.clips
  assert {p.fps for p in clips} == {real.fps}
  assert collections.Counter(p.emotion for p in clips) == dict(real.emotions)
  assert config.dataset_name == real.builder and config.grey == real.grey
  assert set(dict(real.emotions)) <= set(PARSER_WORDS[real.builder])
  assert len({p.sample_id for p in clips}) == len(clips)


def test_real_shapes_match_the_counted_annotation_sheets():
  # The figures of DATASETS.md / SOURCES.md that the sheets reproduce.
  assert dict(STAND_INS["casme2"].real.emotions) == {
      "others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25,
      "sadness": 7, "fear": 2}
  assert dict(STAND_INS["samm"].real.emotions) == {
      "anger": 57, "other": 26, "happiness": 26, "surprise": 15, "contempt": 12, "disgust": 9,
      "fear": 8, "sadness": 6}
  sizes = {name: (len(s.real.subjects), s.real.num_clips) for name, s in STAND_INS.items()}
  assert sizes["casme2"] == (26, 255) and sizes["samm"] == (29, 159)
  assert sizes["smic_hs"] == (16, 164) and sizes["smic_vis"] == sizes["smic_nir"] == (8, 71)
  assert sizes["casme_sq"] == (14, 57) and sizes["casme"][1] == 195
  assert sizes["ckplus"] == (123, 327) and sizes["oulu_casia"] == (80, 480)
  assert sizes["mug"][0] == 52


@pytest.mark.parametrize("name", list(STAND_INS))
def test_expressions_move_as_their_word_says(name, plans):
  for plan in plans[name]:
    assert plan.expression_type in generate.expression_types_of(plan.emotion)
    # Only MUG's neutral takes are still: "others" are real movements of other AUs.
    assert bool(plan.expression_type.aus) == (plan.emotion != "neutral")
  kind = STAND_INS[name].config
  if name in MICRO_STAND_INS:
    assert kind.kind == "micro" and kind.difficulty == generate.CALIBRATED_MICRO_DIFFICULTY
  else:
    assert kind.kind.startswith("macro") and kind.difficulty == 1.0
    assert kind.amplitude_range() == generate.MOTION_KINDS["macro"].amplitude_px


def test_others_are_movements_of_no_emotion():
  others = generate.expression_types_of("others")
  assert generate.expression_types_of("other") == others
  emotion_aus = {t.aus for t in generate.EXPRESSION_TYPES}
  assert others and all(t.aus and t.aus not in emotion_aus for t in others)
  with pytest.raises(ValueError, match="'joy'"):
    generate.expression_types_of("joy")


@pytest.mark.parametrize("name", list(STAND_INS))
def test_records_are_written_as_the_real_builder_writes_them(name, plans):
  stand_in = STAND_INS[name]
  config, real = stand_in.config, stand_in.real
  for plan in plans[name][:2]:
    record = generate.sample_from_plan(plan, config)
    assert set(record) == set(schema.METADATA_KEYS) | {schema.SOURCE_FRAMES, schema.FRAMES}
    assert record[schema.DATASET] == real.builder
    assert record[schema.THREE_CLASS] == records.three_class(real.builder, plan.emotion)
    assert stand_ins.is_stand_in(record[schema.ANNOTATION])
    frames = record[schema.FRAMES]
    assert frames.shape == (plan.n_frames, config.size, config.size, 1 if real.grey else 3)
    onset, apex, offset = record[schema.ONSET], record[schema.APEX], record[schema.OFFSET]
    if real.builder in ("smic", "mug"):  # no timing annotated: the whole clip, no apex
      assert (onset, apex, offset) == (0, -1, plan.n_frames - 1)
      assert record[schema.APEX_FRAME] == -1
    elif real.builder in ("ckplus", "oulu_casia"):  # neutral -> peak sequences
      assert (onset, apex, offset) == (0, plan.n_frames - 1, plan.n_frames - 1)
    else:
      assert 0 <= onset < apex < offset < plan.n_frames
    coded_aus = real.builder in ("casme", "casme2", "casme_sq", "samm", "ckplus")
    assert bool(record[schema.ACTION_UNITS]) == coded_aus
    assert (record[schema.OBJECTIVE_CLASS] > 0) == (real.builder in ("casme2", "samm"))


def test_identity_pools_differ_between_stand_ins():
  pools = {name: {generate.subject_identity(s.config, i) for i in range(s.config.n_subjects)}
           for name, s in STAND_INS.items()}
  for (a, pool_a), (b, pool_b) in itertools.combinations(pools.items(), 2):
    if {a, b} == {"casme_sq", "casme_sq_macro"}:
      continue  # one corpus: the same participants
    assert not pool_a & pool_b, (a, b)
  # CAS(ME)^2's micro and macro clips show the same person under the same subject folder.
  micro, macro = (STAND_INS[n].config for n in ("casme_sq", "casme_sq_macro"))
  s15 = [generate.subject_identity(c, c.subject_names.index("s15")) for c in (micro, macro)]
  assert s15[0] == s15[1]
  # A population's tones stay in its range: CASME's participants are no SAMM-wide mix.
  tones = {name: np.mean([np.mean(i.skin) for i in pools[name]]) for name in ("casme2", "samm")}
  assert tones["casme2"] > tones["samm"]


def test_cameras_lighting_and_motion_differ_between_stand_ins():
  domains = {name: (s.config.camera, s.config.nuisance, s.config.size, s.config.seed)
             for name, s in STAND_INS.items()}
  for (a, da), (b, db) in itertools.combinations(domains.items(), 2):
    if {a, b} == {"casme_sq", "casme_sq_macro"}:
      assert da[:3] == db[:3]  # one recording setup
      continue
    assert da[0] != db[0] or da[1] != db[1], (a, b)
    assert da[2] != db[2] and da[3] != db[3], (a, b)
  # The same identity and clip seen through two cameras: different intensities.
  base = STAND_INS["casme2"].config
  plan = generate.plan_dataset(base)[0]
  frames = [generate.render_plan(plan, dataclasses.replace(base, camera=camera), [0])[0]
            for camera in (base.camera, STAND_INS["smic_hs"].config.camera)]
  means = [f.reshape(-1, 3).mean(0) for f in frames]
  assert np.abs(means[0] - means[1]).max() > 5.0


def test_sample_ids_are_unique_across_the_stand_ins_of_one_dataset(plans):
  # CAS(ME)^2 micro + macro and SMIC's three cameras are loaded together, under one `dataset`.
  for group in (("casme_sq", "casme_sq_macro"), ("smic_hs", "smic_vis", "smic_nir")):
    ids = [p.sample_id for name in group for p in plans[name]]
    assert len(set(ids)) == len(ids), group
  assert plans["smic_hs"][0].sample_id == "s1/s1_sur_01"  # HS: the MEGC2019 style
  assert plans["smic_vis"][0].sample_id.startswith("VIS/s11/s11_")


def test_stand_in_config_mistakes_are_named():
  config = STAND_INS["casme_sq"].config
  with pytest.raises(ValueError, match="emotion_counts add up to 58"):
    dataclasses.replace(config, emotion_counts=config.emotion_counts + (("fear", 1),))
  with pytest.raises(ValueError, match="subject_names must have one entry per subject"):
    dataclasses.replace(config, subject_names=config.subject_names[:-1])
  with pytest.raises(ValueError, match="naming must be one of"):
    dataclasses.replace(config, naming="casme3")


# ---- the synthetic_me presets are unchanged ------------------------------------------------------

def _plan_fingerprint(config) -> str:
  digest = hashlib.sha256()
  for p in generate.plan_dataset(config):
    e = p.expression
    fields = (p.sample_id, p.subject, p.subject_index, p.clip_index,
              dataclasses.astuple(p.identity), p.expression_type.aus, p.expression_type.label,
              p.expression_type.emotion, p.expression_type.objective_class,
              e.aus, e.onset, e.apex, e.offset, e.amplitude_px, e.intensities, e.release,
              p.n_frames, p.fps, p.first_source_frame, p.render_seed)
    digest.update(repr(fields).encode())
  return digest.hexdigest()[:16]


def _record_fingerprint(config) -> str:
  digest = hashlib.sha256()
  for sample in generate.generate_samples(config):
    for key in sorted(sample):
      value = sample[key]
      digest.update(key.encode())
      digest.update(value.tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
  return digest.hexdigest()[:16]


# Computed with the code of synthetic_me 1.2.0, before the stand-ins existed.
@pytest.mark.parametrize("name, fingerprint", [
    ("micro", "962bf91ab6ad7727"), ("macro", "fecf1ce921726e4e"),
    ("megc_sized", "b9ddc4703210f215"), ("micro_tiny", "03ed17a439232a19")])
def test_presets_plan_the_same_clips_as_before(name, fingerprint):
  assert _plan_fingerprint(generate.PRESETS[name]) == fingerprint


def test_micro_tiny_records_are_byte_identical_to_before():
  assert _record_fingerprint(generate.PRESETS["micro_tiny"]) == "56c51aca2fd8c90f"


# ---- swapping by name ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec, stand_in", [
    ("casme2", "casme2"), ("casme2/cropped", "casme2"),
    ("casme2/cropped/size=64,frame_range=whole", "casme2"), ("casme2/raw_selected:1.0.0", "casme2"),
    ("casme", "casme"), ("casme/raw", "casme"),
    ("casme_sq", "casme_sq"), ("casme_sq/micro", "casme_sq"), ("casme_sq/micro_raw", "casme_sq"),
    ("casme_sq/macro", "casme_sq_macro"),
    ("smic", "smic_hs"), ("smic/hs", "smic_hs"), ("smic/hs_e", "smic_hs"),
    ("smic/vis", "smic_vis"), ("smic/vis_raw", "smic_vis"), ("smic/nir", "smic_nir"),
    ("smic/nir_e/size=64", "smic_nir"),
    ("samm", "samm"), ("samm/raw", "samm"), ("samm/raw/repair=midpoint", "samm"),
    ("ckplus", "ckplus"), ("ckplus/default", "ckplus"), ("mug", "mug"),
    ("oulu_casia", "oulu_casia"), ("oulu_casia/vl_strong", "oulu_casia"),
    ("oulu_casia/ni_dark", "oulu_casia"),
])
def test_stand_in_of_every_spec_form(spec, stand_in):
  assert stand_ins.stand_in_of(spec) == f"synthetic_me/{stand_in}"


def test_synthetic_specs_pass_and_unknown_names_are_refused():
  for spec in ("synthetic_me/micro", "synthetic_me/casme2", "synthetic_me"):
    assert stand_ins.stand_in_of(spec) == spec
  for spec in ("affectnet", "smic/thermal", "casme_sq/long"):
    with pytest.raises(ValueError, match="no synthetic_me stand-in.*casme2.*smic/hs"):
      stand_ins.stand_in_of(spec)


def test_resolve_swaps_only_when_asked():
  data = ml_collections.ConfigDict({"datasets": ("casme2/cropped", "samm/raw", "smic/hs"),
                                    "stand_in": False})
  assert stand_ins.resolve(data) == ("casme2/cropped", "samm/raw", "smic/hs")
  data.stand_in = True
  assert stand_ins.resolve(data) == ("synthetic_me/casme2", "synthetic_me/samm",
                                     "synthetic_me/smic_hs")
  assert stand_ins.resolve({"datasets": ("casme2",)}) == ("casme2",)  # stand_in defaults off
  with pytest.raises(ValueError, match="same stand-in twice"):
    stand_ins.resolve({"datasets": ("smic/hs", "smic/hs_e"), "stand_in": True})
  with pytest.raises(ValueError, match="data.stand_in must be True or False"):
    stand_ins.resolve({"datasets": ("casme2",), "stand_in": "yes"})


def test_is_stand_in_labels_synthetic_data():
  assert stand_ins.is_stand_in("synthetic_me/casme2")
  assert stand_ins.is_stand_in("synthetic_me/micro")
  assert stand_ins.is_stand_in("rendered")  # synthetic_me's own records
  assert not stand_ins.is_stand_in("casme2/cropped")
  assert not stand_ins.is_stand_in("CASME2-coding-20140508.xlsx row 2")


def test_smallest_stand_in_builds_through_tfds(tmp_path):
  import tensorflow_datasets as tfds
  import tfds_builders.synthetic_me  # noqa: F401  (registers the builder)

  builder = tfds.builder("synthetic_me/casme_sq", data_dir=str(tmp_path))
  builder.download_and_prepare()
  real = STAND_INS["casme_sq"].real
  rows = list(tfds.as_numpy(builder.as_dataset(split="train")))
  assert len(rows) == real.num_clips
  assert {r[schema.DATASET].decode() for r in rows} == {"casme_sq"}
  emotions = collections.Counter(r[schema.EMOTION].decode() for r in rows)
  assert emotions == dict(real.emotions)
  assert {r[schema.SUBJECT].decode() for r in rows} == set(real.subjects)
  assert all(r[schema.FRAMES].shape[1:] == (96, 96, 3) for r in rows)
