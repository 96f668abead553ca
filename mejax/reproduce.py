"""python -m mejax.reproduce PAPER[:TABLE] --workdir W [--stand_in] [--smoke]: a paper's tables.

Each paper declares its tables in `configs/papers/<paper>.py` (`get_tables()`): every cell of a
table is a `Scenario`, an experiment config file with a preset plus dotted overrides, and the
figure the paper published for it. This module runs every scenario (reusing finished runs) and
writes `table.md` / `table.json` with our figure beside the paper's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import pathlib
import re
import shlex
import sys
import time
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from mejax import checkpoints
from mejax import cli
from mejax import config_files
from mejax import files
from mejax import runs
from mejax import train
from mejax.data import clipset
from mejax.data import stand_ins
from mejax.data import view_cache

log = logging.getLogger(__name__)

# What a table's cells report: a pooled metric of `metrics.json`, a confusion matrix, or the test
# accuracy of each of the last epochs of the run's history.
METRICS = ("accuracy", "uar", "uf1", "micro_f1", "confusion", "epoch_accuracy")


@dataclasses.dataclass(frozen=True)
class Scenario:
  """One cell (or one row) of a paper's table.

  row, column: the labels of the paper's table ("SMIC -> SAMM", "Model-A"); column "" where the
    table has one column of results.
  config: a config file of configs/ with its preset ("model_a.py:model_c"); --smoke adds ",smoke".
  overrides: dotted config keys applied after the preset ("data.datasets", "protocol.name",
    "model.kernel_size", ...): what differs between the table's scenarios. Datasets are the
    licensed ones ("casme2/cropped"); --stand_in swaps them for their synthetic_me stand-ins.
  paper: the published figure in the table's metric (a fraction, not a percentage; a matrix
    for "confusion", a list, or {"mean": m, "std": s}, for "epoch_accuracy"), None where the
    paper gives none.
  note: what a reader must know about this cell (e.g. how it departs from the paper).
  """
  row: str
  column: str
  config: str
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  paper: Any = None
  note: str = ""
  # Applied after `overrides` at the paper's sizes only, or with --smoke only: settings that are
  # sizes (Reddy et al.'s D = 96 on CAS(ME)^2) and the smoke sizes a scenario needs (a kernel of
  # 19 frames needs more than the smoke preset's 18).
  paper_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  smoke_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Table:
  """A paper's table: its scenarios in reading order (rows, then columns) and its metric.

  metric: one of METRICS, as the paper reports it; or several pooled metrics ("accuracy",
    "uar", "uf1") side by side, each scenario's `paper` then a mapping metric -> figure.
  class_names: for "confusion" tables, the row/column order of the paper's matrix.
  notes: table-level remarks (the paper's protocol, scenarios that cannot be expressed and why).
  """
  name: str
  title: str
  metric: str | tuple[str, ...]
  scenarios: Sequence[Scenario]
  class_names: Sequence[str] = ()
  notes: Sequence[str] = ()

  def __post_init__(self):
    several = not isinstance(self.metric, str)
    if (not self.metrics or any(m not in METRICS for m in self.metrics)
        or several and any(m in ("confusion", "epoch_accuracy") for m in self.metrics)):
      raise ValueError(f"Table {self.name!r}: metric {self.metric!r} is not one of {METRICS} "
                       "(or a tuple of pooled ones)")

  @property
  def metrics(self) -> tuple[str, ...]:
    return (self.metric,) if isinstance(self.metric, str) else tuple(self.metric)

  @property
  def metric_label(self) -> str:
    return ", ".join(self.metrics)


# ------------------------------------------------------------------------------------------------
# Declarations -> configs.

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"
PAPER_DIR = CONFIG_DIR / "papers"
# An override value "@ROW/COLUMN" (e.g. init_from) names the workdir of another scenario of the
# same table, which then runs first.
REFERENCE = "@"


def known_papers() -> list[str]:
  return sorted(p.stem for p in PAPER_DIR.glob("*.py"))


def load_tables(paper: str) -> tuple[str, dict[str, Table]]:
  """(paper name, its tables) of `configs/papers/<paper>.py`, or of a paper file's path."""
  path = pathlib.Path(paper)
  if path.suffix != ".py":
    path = PAPER_DIR / f"{paper}.py"
  if not path.is_file():
    raise ValueError(f"Unknown paper {paper!r}: known papers are {', '.join(known_papers())} "
                     f"(configs/papers/<paper>.py)")
  spec = importlib.util.spec_from_file_location(f"mejax_paper_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  tables = module.get_tables()
  for name, table in tables.items():
    if not isinstance(table, Table) or table.name != name:
      raise ValueError(f"{path}: get_tables()[{name!r}] must be a Table named {name!r}")
  return path.stem, tables


def _config_path(config: str) -> tuple[pathlib.Path, str]:
  file, _, preset = config.partition(":")
  path = pathlib.Path(file)
  if not path.is_absolute():
    path = CONFIG_DIR / path
  return path, preset


# What --smoke keeps from the paper's config: its data and protocol. The smoke preset supplies
# sizes, model width and schedule only.
_KEPT_BY_SMOKE = (("data", ("datasets", "label_map", "selection")), ("protocol", None))


def scenario_config(scenario: Scenario, *, smoke: bool, stand_in: bool,
                    data_dir: str | None = None) -> ml_collections.ConfigDict:
  """The experiment config of a scenario: its config file and preset (at smoke sizes with
  `smoke`), its overrides, and the stand-in datasets with `stand_in`. "@" references are left
  for the runner to resolve."""
  path, preset = _config_path(scenario.config)
  if not path.is_file():
    raise ValueError(f"Scenario {scenario.row!r}/{scenario.column!r}: no config file {path}")
  config = config_files.load(path, preset or None)
  if smoke:
    small = config_files.load(path, ",".join(p for p in (preset, "smoke") if p))
    for section, keys in _KEPT_BY_SMOKE:
      for key in keys or config[section].keys():
        with small[section].ignore_type():
          small[section][key] = config[section][key]
    config = small
  extra = scenario.smoke_overrides if smoke else scenario.paper_overrides
  for dotted, value in {**scenario.overrides, **extra}.items():
    config_files.set_dotted(config, dotted, value)
  if data_dir:
    config.data.data_dir = data_dir
  if stand_in:
    config.data.stand_in = True
  return config


# ------------------------------------------------------------------------------------------------
# Running a table.

@dataclasses.dataclass
class Cell:
  """A scenario with its resolved config, its run's workdir and, once run, its figures."""
  scenario: Scenario
  config: ml_collections.ConfigDict
  workdir: pathlib.Path = None
  ours: Any = None
  reused: bool = False
  wall_s: float = 0.0
  data: list[str] = dataclasses.field(default_factory=list)
  warnings: list[str] = dataclasses.field(default_factory=list)

  @property
  def key(self) -> str:
    s = self.scenario
    return f"{s.row}/{s.column}" if s.column else s.row


def _run_dir(root: pathlib.Path, cell: Cell) -> pathlib.Path:
  """Runs are keyed by their whole config, so a scenario shared by two tables (or two papers
  with one workdir) trains once, and a changed declaration trains anew."""
  digest = hashlib.sha256(cell.config.to_json(sort_keys=True).encode()).hexdigest()[:10]
  path, preset = _config_path(cell.scenario.config)
  stem = "-".join(p for p in (path.stem, preset.replace(",", "-")) if p)
  return root / "runs" / f"{stem}-{digest}"


def resolve(table: Table, root: pathlib.Path, *, smoke: bool, stand_in: bool,
            data_dir: str | None = None) -> list[Cell]:
  """The table's cells with configs and workdirs; "@ROW/COLUMN" override values become the
  workdir of that scenario (declared earlier in the table)."""
  cells, by_key = [], {}
  for scenario in table.scenarios:
    config = scenario_config(scenario, smoke=smoke, stand_in=stand_in, data_dir=data_dir)
    cell = Cell(scenario, config)
    for dotted, value in scenario.overrides.items():
      if isinstance(value, str) and value.startswith(REFERENCE):
        target = by_key.get(value[1:])
        if target is None:
          raise ValueError(f"Table {table.name!r}, scenario {cell.key!r}: {dotted}={value!r} "
                           f"names no earlier scenario; earlier: {sorted(by_key)}")
        config_files.set_dotted(config, dotted, str(target.workdir))
    cell.workdir = _run_dir(root, cell)
    if cell.key in by_key:
      raise ValueError(f"Table {table.name!r}: two scenarios named {cell.key!r}")
    by_key[cell.key] = cell
    cells.append(cell)
  return cells


def check_data(cells: Sequence[Cell]) -> None:
  """Builds the embedded synthetic_me datasets the cells need; refuses, in one message, licensed
  datasets that are not built, with the command that builds each."""
  missing, embedded = {}, {}
  for cell in cells:
    data = cell.config.data
    if data.get("view_cache", False) and view_cache.cache_path(data).exists():
      continue  # the run reads its cached views (a machine without TensorFlow)
    for name in stand_ins.resolve(data):
      if clipset.dataset_info_path(name, data.data_dir) is not None:
        continue
      target = embedded if clipset.is_embedded(name) else missing
      target.setdefault(name, data.data_dir)
  if missing:
    commands = "; ".join(
        f"`python -m mejax.prepare {shlex.quote(n)} --data_dir {shlex.quote(str(d))} "
        f"--manual_dir {n.split('/')[0]}=FOLDER`" for n, d in sorted(missing.items()))
    raise ValueError(f"Datasets not built: {', '.join(sorted(missing))}. Build each from your "
                     f"licensed copy ({commands}), or run with --stand_in to use their "
                     "synthetic_me stand-ins")
  if embedded:
    tfds = clipset.import_tfds()
    for name, data_dir in sorted(embedded.items()):
      clipset.build_embedded(tfds, name, data_dir)


def _figure(metric: str, metrics: dict, last_epochs: int):
  """Our figure of a finished run in a table's metric."""
  pooled = metrics["report"]["pooled"]
  if metric == "confusion":
    return pooled["confusion"]
  if metric == "epoch_accuracy":
    marked = [(h["epoch"], h["test_accuracy"]) for h in metrics["history"]
              if "test_accuracy" in h]
    return marked[-last_epochs:]
  return pooled[metric]


def _figures(table: Table, metrics: dict, last_epochs: int):
  if len(table.metrics) == 1:
    return _figure(table.metric, metrics, last_epochs)
  return {m: _figure(m, metrics, last_epochs) for m in table.metrics}


def run_cells(table: Table, cells: Sequence[Cell]) -> None:
  """Trains (or reuses) every cell's run in table order and reads its figure."""
  for i, cell in enumerate(cells):
    cell.reused = (cell.workdir / "metrics.json").exists()
    print(f"[{table.name} {i + 1}/{len(cells)}] {cell.key}: {cell.workdir}"
          + (" (finished before: reused)" if cell.reused else ""), flush=True)
    start = time.perf_counter()
    try:
      train.train_and_evaluate(cell.config, str(cell.workdir))
    except config_files.USER_ERRORS as e:  # which scenario, then what; finished runs are kept
      raise type(e)(f"{table.name}, scenario {cell.key!r} ({cell.workdir}): {e}") from e
    cell.wall_s = 0.0 if cell.reused else time.perf_counter() - start
    metrics = runs.read_metrics(cell.workdir)
    paper = cell.scenario.paper
    last = len(paper) if isinstance(paper, (list, tuple)) and paper else 10
    cell.ours = _figures(table, metrics, last)
    cell.data = data_used(cell.config)
    cell.warnings += list(metrics.get("warnings", []))


def data_used(config: ml_collections.ConfigDict) -> list[str]:
  """What a run's data was: "name:version" per dataset, stand-ins named as such."""
  out = []
  for spec, name in zip(config.data.datasets, stand_ins.resolve(config.data)):
    info = clipset.dataset_info_path(name, config.data.data_dir)
    version = f":{info.parent.name}" if info is not None else ""
    out.append(f"{name}{version} (stand-in of {spec})" if name != spec else f"{name}{version}")
  return out


# ------------------------------------------------------------------------------------------------
# Writing a table.

def _percent(value) -> str:
  return "—" if value is None else f"{100 * float(value):.1f}"


def _rows_and_columns(cells: Sequence[Cell]) -> tuple[list[str], list[str]]:
  rows = list(dict.fromkeys(c.scenario.row for c in cells))
  columns = list(dict.fromkeys(c.scenario.column for c in cells))
  return rows, columns


def _normalised(matrix) -> np.ndarray:
  """Row-normalised fractions of a confusion matrix of counts (or of fractions: unchanged)."""
  m = np.asarray(matrix, dtype=np.float64)
  if m.size and m.max() > 1.0 + 1e-9:
    m = m / np.maximum(m.sum(1, keepdims=True), 1e-12)
  return m


def shared_folds(cells: Sequence[Cell]) -> list[list[str]]:
  """Groups of cells (2 or more) whose runs were evaluated on identical folds (folds.json)."""
  groups = {}
  for cell in cells:
    path = cell.workdir / "folds.json"
    if path.exists():
      groups.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), []).append(cell.key)
  return [keys for keys in groups.values() if len(keys) > 1]


def _labels(paper: str, table: Table, *, smoke: bool, stand_in: bool) -> list[str]:
  lines = [f"# {paper}: {table.title}", "",
           f"Metric: **{table.metric_label}** (the paper's); figures in %, ours beside the "
           "paper's."]
  if stand_in:
    lines.append("**Stand-in data:** our figures come from synthetic_me stand-ins of the licensed "
                 "datasets, not from the data the paper used. They show that the experiment runs; "
                 "they are not a reproduction of the paper's figures.")
  if smoke:
    lines.append("**:smoke settings:** small inputs, narrow models and few epochs sized for a "
                 "2-core CPU. These are not the paper's settings.")
  return lines


_FOLD_WITHOUT_CLASS = re.compile(r"Fold (?P<fold>\S+) has no training sample of class "
                                 r"(?P<cls>'[^']*')")


def _summarised(warnings: list[str]) -> list[str]:
  """A run's warnings for a table's notes: the folds lacking a class in one line per class."""
  folds, others = {}, []
  for w in warnings:
    match = _FOLD_WITHOUT_CLASS.match(w)
    if match:
      folds.setdefault(match["cls"], []).append(match["fold"])
    else:
      others.append(w)
  lines = [f"{len(names)} fold(s) have no training sample of class {cls} and give it zero "
           f"sampling and loss weight ({', '.join(names[:4])}{' ...' if len(names) > 4 else ''})"
           for cls, names in folds.items()]
  return others + lines


def render_markdown(paper: str, table: Table, cells: Sequence[Cell], *, smoke: bool,
                    stand_in: bool, wall_s: float) -> str:
  lines = _labels(paper, table, smoke=smoke, stand_in=stand_in) + [""]
  if table.metric in ("confusion", "epoch_accuracy"):
    for cell in cells:
      lines += [f"## {cell.key}", "", f"Data: {', '.join(cell.data)}", ""]
      lines += (_confusion_lines(table, cell) if table.metric == "confusion"
                else _epoch_lines(cell))
      lines.append("")
  else:
    rows, columns = _rows_and_columns(cells)
    by_key = {(c.scenario.row, c.scenario.column): c for c in cells}
    header = ["scenario"]
    several = len(table.metrics) > 1
    for column in columns:
      for metric in table.metrics:
        name = " ".join(p for p in (column, metric if several else "") if p)
        header += [f"{name} ours".strip(), f"{name} paper".strip()]
    header += ["metric", "data"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
      values, data = [row], []
      for column in columns:
        cell = by_key.get((row, column))
        for metric in table.metrics:
          ours, paper = ((cell.ours, cell.scenario.paper) if cell and not several else
                         (cell.ours[metric], (cell.scenario.paper or {}).get(metric)) if cell
                         else (None, None))
          values += [_percent(ours), _percent(paper)] if cell else ["", ""]
        if cell:
          data += [d for d in cell.data if d not in data]
      lines.append("| " + " | ".join(values + [table.metric_label, ", ".join(data)]) + " |")
    lines.append("")
  notes = [f"{c.key}: {c.scenario.note}" for c in cells if c.scenario.note]
  notes += [f"{c.key}: {w}" for c in cells for w in _summarised(c.warnings)]
  notes += [f"Shared folds (identical folds.json): {', '.join(group)}"
            for group in shared_folds(cells)]
  notes += list(table.notes)
  if notes:
    lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
  trained = sum(1 for c in cells if not c.reused)
  lines.append(f"Runs: {len(cells)} ({trained} trained here, {len(cells) - trained} reused); "
               f"wall time {wall_s:.0f} s.")
  return "\n".join(lines) + "\n"


def _confusion_lines(table: Table, cell: Cell) -> list[str]:
  names = list(table.class_names) or [str(i) for i in range(len(cell.ours))]
  ours = _normalised(cell.ours)
  paper = _normalised(cell.scenario.paper) if cell.scenario.paper is not None else None
  lines = ["Row-normalised %, true class by row, predicted by column: ours (paper).", "",
           "| true \\ predicted | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
  for i, name in enumerate(names):
    entries = []
    for j in range(len(names)):
      ours_ij = _percent(ours[i, j]) if i < ours.shape[0] and j < ours.shape[1] else "—"
      paper_ij = (f" ({_percent(paper[i, j])})" if paper is not None
                  and i < paper.shape[0] and j < paper.shape[1] else "")
      entries.append(ours_ij + paper_ij)
    lines.append(f"| {name} | " + " | ".join(entries) + " |")
  return lines


def _epoch_lines(cell: Cell) -> list[str]:
  """Test accuracy of each of the run's last epochs beside the paper's (a list, one per epoch,
  or only their mean and standard deviation)."""
  summary = cell.scenario.paper if isinstance(cell.scenario.paper, Mapping) else None
  paper = [] if summary is not None else list(cell.scenario.paper or [])
  lines = ["| # | our epoch | ours | paper |", "|---|---|---|---|"]
  for i in range(max(len(cell.ours), len(paper))):
    epoch, ours = cell.ours[i] if i < len(cell.ours) else ("", None)
    lines.append(f"| {i + 1} | {epoch} | {_percent(ours)} | "
                 f"{_percent(paper[i]) if i < len(paper) else '—'} |")
  ours = np.asarray([a for _, a in cell.ours], np.float64)
  theirs = (f"{_percent(summary['mean'])} ± {_percent(summary['std'])}" if summary else
            f"{_percent(np.mean(paper))} ± {_percent(np.std(paper))}" if paper else "—")
  if len(ours):
    lines.append(f"| mean ± std | | {_percent(ours.mean())} ± {_percent(ours.std())} | "
                 f"{theirs} |")
  return lines


def table_json(paper: str, table: Table, cells: Sequence[Cell], *, smoke: bool,
               stand_in: bool, wall_s: float) -> dict:
  def plain(value):
    return np.asarray(value).tolist() if value is not None else None
  return {
      "paper": paper, "table": table.name, "title": table.title,
      "metric": list(table.metrics) if len(table.metrics) > 1 else table.metric,
      "data": "stand-in" if stand_in else "licensed", "smoke": smoke,
      "class_names": list(table.class_names), "wall_s": round(wall_s, 1),
      "shared_folds": shared_folds(cells), "notes": list(table.notes),
      "scenarios": [{"row": c.scenario.row, "column": c.scenario.column,
                     "config": c.scenario.config, "workdir": str(c.workdir),
                     "ours": plain(c.ours), "paper": plain(c.scenario.paper),
                     "data": c.data, "reused": c.reused, "wall_s": round(c.wall_s, 1),
                     "note": c.scenario.note, "warnings": c.warnings} for c in cells],
  }


def reproduce(paper: str, table_name: str | None, workdir: str, *, smoke: bool = False,
              stand_in: bool = False, data_dir: str | None = None) -> list[pathlib.Path]:
  """Runs the tables of a paper (or one) and writes W/<paper>/<table>/table.md and table.json
  (papers share W's runs, not their tables: Le et al.'s and Xia et al.'s Table II differ)."""
  paper, tables = load_tables(paper)
  if table_name is not None and table_name not in tables:
    raise ValueError(f"{paper} has no table {table_name!r}; its tables: {', '.join(tables)}")
  chosen = [tables[table_name]] if table_name else list(tables.values())
  root = pathlib.Path(workdir)
  resolved = [(t, resolve(t, root, smoke=smoke, stand_in=stand_in, data_dir=data_dir))
              for t in chosen]
  check_data([c for _, cells in resolved for c in cells])  # every missing dataset at once
  if smoke:
    print("--smoke: the configs' :smoke sizes, widths and schedules, not the papers' settings")
  if stand_in:
    print("--stand_in: synthetic_me stand-ins replace the licensed datasets; figures are "
          "synthetic, not the papers' data")
  written = []
  for table, cells in resolved:
    start = time.perf_counter()
    run_cells(table, cells)
    wall_s = time.perf_counter() - start
    out = root / paper / table.name
    out.mkdir(parents=True, exist_ok=True)
    kwargs = dict(smoke=smoke, stand_in=stand_in, wall_s=wall_s)
    files.write_atomic(out / "table.md", render_markdown(paper, table, cells, **kwargs))
    files.write_atomic(out / "table.json",
                       json.dumps(table_json(paper, table, cells, **kwargs), indent=1))
    print(f"{paper} {table.name}: {out / 'table.md'} ({wall_s:.0f} s)")
    written.append(out / "table.md")
  return written


def main(argv: Sequence[str] | None = None) -> None:
  parser = cli.ArgumentParser(
      prog="python -m mejax.reproduce",
      description="Runs every scenario of a paper's table and writes table.md / table.json with "
                  "the paper's figures beside ours.")
  parser.add_argument("target", help="PAPER or PAPER:TABLE (papers: configs/papers/*.py)")
  parser.add_argument("--workdir", help="Folder of the tables and their runs.")
  parser.add_argument("--stand_in", action="store_true",
                      help="Swap every licensed dataset for its synthetic_me stand-in.")
  parser.add_argument("--smoke", action="store_true",
                      help="The configs' :smoke sizes and schedules (not the papers' settings).")
  parser.add_argument("--data_dir", default=None, help="TFDS data dir (default: the configs').")
  parser.add_argument("--list", action="store_true",
                      help="Print the tables and their scenarios; run nothing.")
  args = parser.parse_args(argv)
  if not args.list and not args.workdir:
    parser.error("the following arguments are required: --workdir")
  logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s: %(message)s")
  logging.getLogger("absl").setLevel(logging.WARNING)
  paper, _, table = args.target.partition(":")
  try:
    if args.list:
      name, tables = load_tables(paper)
      for t in tables.values():
        if table and t.name != table:
          continue
        print(f"{name}:{t.name} ({t.metric_label}, {len(t.scenarios)} scenarios) {t.title}")
        for s in t.scenarios:
          print(f"  {s.row}{' / ' + s.column if s.column else ''}: {s.config} "
                f"{dict(s.overrides)}")
      return
    reproduce(paper, table or None, args.workdir, smoke=args.smoke, stand_in=args.stand_in,
              data_dir=args.data_dir)
  except config_files.USER_ERRORS + (checkpoints.WorkdirBusy, files.DiskFull) as e:
    cli.close_progress_bars()
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  # Run as mejax.reproduce, not __main__: the paper files build mejax.reproduce's Tables.
  from mejax import reproduce as _module
  _module.main()
