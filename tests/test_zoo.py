"""python -m mejax.zoo: every model on the same folds, one table; an interrupted zoo resumes."""

import json

import pytest

from mejax import zoo


def test_every_zoo_entry_is_a_smoke_preset_on_the_same_loso_folds():
  configs = {name: zoo.zoo_config(name) for name in zoo.ZOO}
  assert {c.protocol.name for c in configs.values()} == {"loso"}
  assert {tuple(c.data.datasets) for c in configs.values()} == {("synthetic_me/micro",)}
  assert {c.model.name for c in configs.values()} >= {
      "convlstm_ae", "stcnn", "fusenet", "model_a", "split_model", "model_b", "model_c",
      "strcn_a", "strcn_g", "di_vgg", "di_resnet"}


@pytest.mark.slow
def test_zoo_writes_one_row_per_model_and_reads_finished_runs_back(tiny_data_dir, tmp_path,
                                                                    monkeypatch):
  names = ["strcn_g", "di_vgg"]
  rows = zoo.run(tmp_path, names, epochs=1, data_dir=tiny_data_dir,
                 datasets=("synthetic_me/micro_tiny",))
  assert [r["model"] for r in rows] == names
  for row in rows:
    pooled = json.loads((tmp_path / row["model"] / "metrics.json").read_text())["report"]["pooled"]
    assert (row["accuracy"], row["uar"], row["uf1"]) == (pooled["accuracy"], pooled["uar"],
                                                         pooled["uf1"])
    folds = json.loads((tmp_path / row["model"] / "folds.json").read_text())
    assert pooled["n"] == len(folds["sample_ids"])  # LOSO: every clip tested once
    assert row["parameters"] > 0 and row["train_seconds"] > 0
  assert rows[0]["config"] == "configs/strcn_g.py:smoke"
  # A second run trains nothing: it reads the finished runs back.
  from mejax import train
  monkeypatch.setattr(train, "train_and_evaluate",
                      lambda *a, **k: pytest.fail("a finished zoo run was trained again"))
  again = zoo.run(tmp_path, names, epochs=1, data_dir=tiny_data_dir,
                  datasets=("synthetic_me/micro_tiny",))
  assert again == rows
  assert "| strcn_g | `configs/strcn_g.py:smoke` |" in zoo.table(rows)
  # ...and a run made with another config is refused, not passed off as this one's.
  with pytest.raises(ValueError, match="holds a different experiment.*train.num_epochs"):
    zoo.run(tmp_path, names, epochs=2, data_dir=tiny_data_dir,
            datasets=("synthetic_me/micro_tiny",))
