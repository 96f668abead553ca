"""python -m mejax.reproduce: papers' tables declared in configs/papers/, run and written."""

import json
import pathlib
import subprocess
import sys

import pytest

from mejax import reproduce
from mejax import runs

TINY = str(pathlib.Path(__file__).with_name("tiny_config.py"))

PAPER = f'''"""A paper of the tests."""
from mejax.reproduce import Scenario, Table

def get_tables():
  return {{"table1": Table("table1", "Two protocols, two seeds", "uar", [
      Scenario("LOSO", "narrow", {TINY!r}, {{"protocol.name": "loso"}}, paper=0.5),
      Scenario("LOSO", "seed 1", {TINY!r}, {{"protocol.name": "loso", "seed": 1}}, paper=0.6),
      Scenario("hold-out", "narrow", {TINY!r}, {{"protocol.name": "holdout"}}),
  ], notes=["a table note"])}}
'''


@pytest.fixture()
def paper_file(tmp_path):
  path = tmp_path / "testpaper.py"
  path.write_text(PAPER)
  return path


def test_every_paper_declaration_resolves_to_valid_configs(tmp_path):
  """Each scenario of every table of configs/papers/ names config keys that exist, at the
  paper's settings and at smoke sizes, on licensed data and on stand-ins."""
  papers = reproduce.known_papers()
  assert papers, "configs/papers/ declares no paper"
  for paper in papers:
    _, tables = reproduce.load_tables(paper)
    assert tables, paper
    for table in tables.values():
      assert table.scenarios, (paper, table.name)
      for smoke in (False, True):
        for stand_in in (False, True):
          cells = reproduce.resolve(table, tmp_path, smoke=smoke, stand_in=stand_in)
          for cell in cells:
            assert cell.config.data.datasets, (paper, table.name, cell.key)


def test_a_table_runs_reuses_its_runs_and_labels_its_figures(paper_file, tmp_path,
                                                            tiny_data_dir):
  workdir = tmp_path / "w"
  written = reproduce.reproduce(str(paper_file), "table1", str(workdir), smoke=False,
                                stand_in=False, data_dir=tiny_data_dir)
  assert written == [workdir / "testpaper" / "table1" / "table.md"]
  result = json.loads((workdir / "testpaper" / "table1" / "table.json").read_text())
  assert [(s["row"], s["column"]) for s in result["scenarios"]] == [
      ("LOSO", "narrow"), ("LOSO", "seed 1"), ("hold-out", "narrow")]
  for s in result["scenarios"]:
    assert s["ours"] == runs.read_metrics(pathlib.Path(s["workdir"]))["report"]["pooled"]["uar"]
    assert not s["reused"] and s["data"][0].startswith("synthetic_me/micro_tiny:")
  assert [s["paper"] for s in result["scenarios"]] == [0.5, 0.6, None]
  # The two LOSO scenarios are evaluated on the same folds; the hold-out one is not.
  assert result["shared_folds"] == [["LOSO/narrow", "LOSO/seed 1"]]
  text = (workdir / "testpaper" / "table1" / "table.md").read_text()
  assert "| LOSO | " in text and "| 50.0 |" in text and "| 60.0 |" in text
  assert "a table note" in text and "Stand-in" not in text

  # A second call trains nothing: every run is reused, its checkpoints untouched.
  stamps = {p: p.stat().st_mtime_ns for p in workdir.glob("runs/*/checkpoints/*/*")}
  reproduce.reproduce(str(paper_file), None, str(workdir), data_dir=tiny_data_dir)
  again = json.loads((workdir / "testpaper" / "table1" / "table.json").read_text())
  assert all(s["reused"] for s in again["scenarios"])
  assert [s["ours"] for s in again["scenarios"]] == [s["ours"] for s in result["scenarios"]]
  assert stamps == {p: p.stat().st_mtime_ns for p in workdir.glob("runs/*/checkpoints/*/*")}


def test_stand_in_and_smoke_runs_are_labelled(paper_file, tmp_path):
  _, tables = reproduce.load_tables(str(paper_file))
  cells = reproduce.resolve(tables["table1"], tmp_path, smoke=True, stand_in=True)
  for cell in cells:
    cell.ours, cell.data = 0.4, ["synthetic_me/casme2:1.0.0 (stand-in of casme2/cropped)"]
  text = reproduce.render_markdown("testpaper", tables["table1"], cells, smoke=True,
                                   stand_in=True, wall_s=1.0)
  assert "**Stand-in data:**" in text and "not the paper's settings" in text
  assert "stand-in of casme2/cropped" in text


def test_references_run_first_and_workdirs_follow_the_config(tmp_path):
  table = reproduce.Table("t", "transfer", "accuracy", [
      reproduce.Scenario("pre-training", "", TINY, {"protocol.name": "holdout"}),
      reproduce.Scenario("fine-tuned", "", TINY, {"init_from": "@pre-training"}),
  ])
  pre, fine = reproduce.resolve(table, tmp_path, smoke=False, stand_in=False)
  assert fine.config.init_from == str(pre.workdir)
  assert pre.workdir != fine.workdir and pre.workdir.parent == tmp_path / "runs"
  again = reproduce.resolve(table, tmp_path, smoke=False, stand_in=False)
  assert [c.workdir for c in again] == [pre.workdir, fine.workdir]  # stable across calls
  bad = reproduce.Table("t", "x", "accuracy", [
      reproduce.Scenario("a", "", TINY, {"init_from": "@nowhere"})])
  with pytest.raises(ValueError, match="names no earlier scenario"):
    reproduce.resolve(bad, tmp_path, smoke=False, stand_in=False)


def test_missing_licensed_datasets_are_listed_at_once(tmp_path):
  table = reproduce.Table("t", "x", "accuracy", [
      reproduce.Scenario("a", "", TINY, {"data.datasets": ("casme2/cropped", "samm/raw")}),
      reproduce.Scenario("b", "", TINY, {"data.datasets": ("smic/hs",)}),
  ])
  cells = reproduce.resolve(table, tmp_path, smoke=False, stand_in=False,
                            data_dir=str(tmp_path / "empty"))
  with pytest.raises(ValueError) as error:
    reproduce.check_data(cells)
  message = str(error.value)
  for name in ("casme2/cropped", "samm/raw", "smic/hs"):
    assert f"python -m mejax.prepare {name} --data_dir" in message
  assert "--stand_in" in message


def test_command_line_errors_are_one_line(tmp_path, capsys, paper_file):
  for argv, expected in (
      (["nosuchpaper", "--workdir", str(tmp_path)], "Unknown paper 'nosuchpaper'"),
      ([f"{paper_file}:table9", "--workdir", str(tmp_path)], "has no table 'table9'"),
      (["talluri2022:table4", "--workdir", str(tmp_path), "--config.x=1"],
       "unrecognized arguments"),
      (["talluri2022:table4", "--smoke"], "required: --workdir"),
  ):
    with pytest.raises(SystemExit) as stop:
      reproduce.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and expected in err[0], err


def test_list_prints_scenarios_without_running(tmp_path, capsys, paper_file):
  reproduce.main([str(paper_file), "--workdir", str(tmp_path / "w"), "--list"])
  out = capsys.readouterr().out
  assert "testpaper:table1 (uar, 3 scenarios)" in out and "LOSO / seed 1" in out
  assert not (tmp_path / "w").exists()


def test_the_command_lists_a_real_paper():
  done = subprocess.run([sys.executable, "-m", "mejax.reproduce", "talluri2022:table4", "--list"],
                        capture_output=True, text=True, check=False)
  assert done.returncode == 0, done.stderr
  assert "talluri2022:table4 (accuracy, 24 scenarios)" in done.stdout
  assert "08 Combined -> SAMM / Model-C" in done.stdout


def test_stand_ins_a_table_needs_are_built_on_first_use(tmp_path):
  """A fresh machine: --stand_in builds the embedded stand-ins the cells name."""
  table = reproduce.Table("t", "x", "accuracy", [
      reproduce.Scenario("a", "", TINY, {"data.datasets": ("casme_sq/micro",),
                                         "data.label_map": "reddy2019"})])
  data_dir = tmp_path / "fresh"
  cells = reproduce.resolve(table, tmp_path, smoke=False, stand_in=True, data_dir=str(data_dir))
  reproduce.check_data(cells)
  assert (data_dir / "synthetic_me" / "casme_sq").is_dir()
  assert reproduce.data_used(cells[0].config)[0].startswith(
      "synthetic_me/casme_sq:") and "(stand-in of casme_sq/micro)" in reproduce.data_used(
          cells[0].config)[0]


def test_folds_lacking_a_class_are_one_note_per_class_not_one_per_fold():
  warnings = [f"Fold kfold:{f} has no training sample of class 'other': it gets zero sampling "
              "and loss weight" for f in range(20)] + ["Label map 'x' dropped 3 clips"]
  assert reproduce._summarised(warnings) == [
      "Label map 'x' dropped 3 clips",
      "20 fold(s) have no training sample of class 'other' and give it zero sampling and loss "
      "weight (kfold:0, kfold:1, kfold:2, kfold:3 ...)"]
