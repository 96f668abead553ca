"""python -m mejax.zoo --workdir DIR: every paper's model on synthetic_me under the same folds.

Trains the `:smoke` preset of each experiment config (ZOO) on synthetic_me/micro with the same
24 leave-one-subject-out folds, one sub-directory of DIR per model, and writes one comparison
table (`zoo.md`, `zoo.json`): pooled accuracy, UAR and UF1, parameter count and training wall
time. A model whose run already finished is read back, not retrained, so an interrupted zoo
resumes (each run also resumes from its own checkpoints).

  python -m mejax.zoo --workdir runs/zoo [--only stcnn,model_a] [--epochs N]
"""

from __future__ import annotations

import json
import pathlib
import time

from absl import app
from absl import flags
from absl import logging

from mejax import checkpoints
from mejax import config_files

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"
# name -> (config file, preset)
ZOO = {
    "convlstm_ae": ("convlstm.py", "smoke"),
    "stcnn": ("stcnn.py", "smoke"),
    "fusenet": ("fusenet.py", "smoke"),
    "model_a": ("model_a.py", "smoke"),
    "split_model": ("model_a.py", "split,smoke"),
    "model_b": ("model_a.py", "model_b,smoke"),
    "model_c": ("model_a.py", "model_c,smoke"),
    "strcn_a": ("strcn_a.py", "smoke"),
    "strcn_g": ("strcn_g.py", "smoke"),
    "di_vgg": ("dynamic_image.py", "smoke"),
    "di_resnet": ("dynamic_image.py", "resnet,smoke"),
}

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory of the zoo's runs and table.")
_ONLY = flags.DEFINE_list("only", None, f"Train only these of {list(ZOO)}.")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Override every preset's train.num_epochs.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir (default: the configs').")


def zoo_config(name: str, epochs: int | None = None, data_dir: str | None = None,
               datasets: tuple[str, ...] | None = None):
  """The config the zoo trains `name` with (its paper config's smoke preset, LOSO folds)."""
  file, preset = ZOO[name]
  config = config_files.load(CONFIGS / file, preset)
  config.protocol.name = "loso"  # one fold list for every model: the comparison's point
  config.progress = False
  # The smoke presets pin 'loop' (what 'auto' picks on one CPU device); 'auto' keeps that there
  # and uses every device of a multi-device machine.
  config.train.fold_strategy = "auto"
  if epochs is not None:
    config.train.num_epochs = epochs
    config.eval.every_epochs = epochs
  if data_dir is not None:
    config.data.data_dir = data_dir
  if datasets:
    config.data.datasets = tuple(datasets)
  return config


def parameter_count(config) -> int:
  import jax.numpy as jnp

  from mejax import models
  from mejax.data import labels as labels_lib
  from mejax.data import views
  from mejax.models import summary
  model = models.from_config(config.model, labels_lib.get_label_map(
      config.data.label_map).num_classes, jnp.float32)
  return summary.summarize(model, (1, *views.view_shape(config.data)))["total_params"]


def run(workdir: pathlib.Path, names, epochs=None, data_dir=None, datasets=None) -> list[dict]:
  from mejax import train
  rows = []
  for name in names:
    config = zoo_config(name, epochs, data_dir, datasets)
    run_dir = workdir / name
    metrics_path = run_dir / "metrics.json"
    timing_path = run_dir / "zoo_timing.json"
    # A finished run is read back only when it is this config's (else: refused, keys named).
    if metrics_path.exists() and timing_path.exists() and checkpoints.claim_workdir(run_dir,
                                                                                    config):
      logging.info("zoo: %s already trained in %s", name, run_dir)
      seconds = json.loads(timing_path.read_text())["train_seconds"]
    else:
      start = time.perf_counter()
      train.train_and_evaluate(config, str(run_dir))
      seconds = time.perf_counter() - start
      timing_path.write_text(json.dumps({"train_seconds": seconds}))
    pooled = json.loads(metrics_path.read_text())["report"]["pooled"]
    rows.append({"model": name, "config": f"configs/{ZOO[name][0]}:{ZOO[name][1]}",
                 "accuracy": pooled["accuracy"], "uar": pooled["uar"], "uf1": pooled["uf1"],
                 "parameters": parameter_count(config), "train_seconds": round(seconds, 1)})
  return rows


def table(rows: list[dict]) -> str:
  lines = ["| model | config | accuracy | UAR | UF1 | parameters | train time (s) |",
           "|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['model']} | `{r['config']}` | {r['accuracy']:.3f} | {r['uar']:.3f} | "
                 f"{r['uf1']:.3f} | {r['parameters']:,} | {r['train_seconds']:.0f} |")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required")
  names = _ONLY.value or list(ZOO)
  unknown = sorted(set(names) - set(ZOO))
  if unknown:
    raise app.UsageError(f"Unknown zoo models {unknown}; known: {list(ZOO)}")
  workdir = pathlib.Path(_WORKDIR.value)
  workdir.mkdir(parents=True, exist_ok=True)
  rows = run(workdir, names, _EPOCHS.value, _DATA_DIR.value)
  text = ("All models on synthetic_me/micro, the same 24 LOSO folds, pooled metrics "
          "(MEGC convention).\n\n" + table(rows) + "\n")
  (workdir / "zoo.md").write_text(text)
  (workdir / "zoo.json").write_text(json.dumps(rows, indent=1))
  print(text)


if __name__ == "__main__":
  app.run(main)
