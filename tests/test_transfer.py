"""config.init_from a mejax workdir: the macro -> micro transfer of Islam et al.

Every fold of the new run starts from one restored fold of another run; parts can be chosen; a
new class count gets a fresh head; anything else that does not fit is refused by name.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_config

from mejax import models
from mejax import runs
from mejax import sharding
from mejax import sweep
from mejax import train
from mejax import transfer
from mejax.data import views
from mejax.models import introspect


def config_from(run_dir, data_dir, **overrides):
  c = tiny_config.get_config()
  c.data.data_dir = data_dir
  c.init_from = str(run_dir)
  for key, value in overrides.items():
    section, leaf = key.split(".") if "." in key else (None, key)
    (c[section] if section else c)[leaf] = value
  return c


def model_and_sample(config, num_classes=3):
  model = models.from_config(config.model, num_classes, jnp.float32)
  return model, jnp.zeros((1,) + views.view_shape(config.data), jnp.float32)


def flat(tree):
  return {k: np.asarray(v) for k, v in introspect.variable_shapes(tree).items()}


def test_every_fold_starts_from_the_chosen_fold_of_the_source_run(tiny_run, tiny_data_dir):
  _, source = tiny_run
  chosen = runs.load(source).fold_names[2]
  with pytest.raises(ValueError, match=r"has 6 folds .*name one with init_from_fold"):
    transfer.initial_variables(config_from(source, tiny_data_dir))
  config = config_from(source, tiny_data_dir, init_from_fold=chosen)
  _, sample = model_and_sample(config)
  leaves = transfer.initial_variables(config)
  origin = runs.load(source).variables[chosen]
  assert {k[0] for k in leaves} == {"params", "batch_stats"}
  assert len(leaves) == len([k for k in introspect.variable_shapes(origin)
                             if k[0] in ("params", "batch_stats")])
  s = sweep.build(config, 3, sample.shape[1:], mesh=sharding.make_mesh(1),
                  labels=np.zeros(10, np.int32), train_mask=np.ones((3, 10), bool),
                  fold_ids=[0, 1, 2])
  state = s.init_state(np.zeros((10,) + sample.shape[1:], np.uint8), leaves)
  for (collection, *path), value in leaves.items():
    tree = getattr(state, collection)
    for name in path:
      tree = tree[name]
    for lane in range(len(s.lanes)):  # every lane, padding included, starts from the same values
      np.testing.assert_array_equal(np.asarray(tree)[lane], value)


def test_parts_a_new_class_count_and_mismatches(tiny_run, tiny_data_dir):
  _, source = tiny_run
  run = runs.load(source)
  origin = run.variables[run.fold_names[0]]
  config = config_from(source, tiny_data_dir)
  model, sample = model_and_sample(config, num_classes=4)
  target = jax.eval_shape(lambda: model.init(jax.random.key(0), sample, train=False))
  head = introspect.head_path(model, target, sample, 4)
  assert head == "head"
  leaves, notes = transfer.carried_variables(origin, target, parts=(), head=head, where="src")
  assert not any(k[1] == "head" for k in leaves) and len(notes) == 1
  assert "head head left freshly initialised" in notes[0] and "(3,) -> (4,)" in notes[0]
  backbone, _ = transfer.carried_variables(origin, target, parts=("backbone",), head=head,
                                           where="src")
  assert backbone and all(k[1] == "backbone" for k in backbone)
  encoder, _ = transfer.carried_variables(origin, target, parts=("autoencoder/encoder",),
                                          head=head, where="src")
  assert encoder and all(k[1:3] == ("autoencoder", "encoder") for k in encoder)
  with pytest.raises(ValueError, match=r"init_from_parts \['decoder'\] name no variables; the "
                                       r"model's top-level modules: \['autoencoder', 'backbone', "
                                       r"'head'\]"):
    transfer.carried_variables(origin, target, parts=("decoder",), head=head, where="src")
  with pytest.raises(ValueError, match=r"params/head/kernel: the model has \(1, 3, 3, 3, 4\), "
                                       r"the source has \(1, 3, 3, 3, 3\)"):
    transfer.carried_variables(origin, target, parts=("head",), head=head, where="src")
  wider = config_from(source, tiny_data_dir, **{"model.width_multiplier": 1 / 16})
  wide_model, _ = model_and_sample(wider)
  wide = jax.eval_shape(lambda: wide_model.init(jax.random.key(0), sample, train=False))
  with pytest.raises(ValueError, match=r"src does not fit the model \(\d+ variable\(s\)\): "
                                       r"batch_stats/backbone/layer1/block0/bn1/mean: the model "
                                       r"has \(4,\), the source has \(2,\)"):
    transfer.carried_variables(origin, wide, parts=(), head="head", where="src")


def test_two_stage_training_from_a_hold_out_run(tiny_data_dir, tmp_path):
  """Stage 1 trains one hold-out fold; stage 2 trains every LOSO fold from it. A model that does
  not fit, and a path that is no run, are refused before the workdir is written."""
  stage1 = tiny_config.get_config()
  stage1.data.data_dir = tiny_data_dir
  stage1.protocol.name = "holdout"
  train.train_and_evaluate(stage1, str(tmp_path / "pretrain"))
  stage2 = config_from(tmp_path / "pretrain", tiny_data_dir)
  report = train.train_and_evaluate(stage2, str(tmp_path / "finetune"))
  assert report["pooled"]["n"] == 30
  stored = json.loads((tmp_path / "finetune" / "config.json").read_text())
  assert stored["init_from"] == str(tmp_path / "pretrain")
  scratch = train.train_and_evaluate(config_from("", tiny_data_dir), str(tmp_path / "scratch"))
  finetuned = json.loads((tmp_path / "finetune" / "metrics.json").read_text())["history"]
  from_scratch = json.loads((tmp_path / "scratch" / "metrics.json").read_text())["history"]
  assert finetuned[0]["train_loss_per_fold"] != from_scratch[0]["train_loss_per_fold"]
  del scratch

  wider = config_from(tmp_path / "pretrain", tiny_data_dir, **{"model.width_multiplier": 1 / 16})
  with pytest.raises(ValueError, match="does not fit the model"):
    train.train_and_evaluate(wider, str(tmp_path / "wider"))
  with pytest.raises(ValueError, match="neither a mejax workdir"):
    train.train_and_evaluate(config_from(tmp_path, tiny_data_dir), str(tmp_path / "nothing"))
  assert not (tmp_path / "wider").exists() and not (tmp_path / "nothing").exists()
