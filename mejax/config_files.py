"""Loading one experiment config file from another (paper configs build on configs/convlstm.py).

ml_collections loads `--config` files by path, so config files are not a package; a paper config
takes the shared experiment skeleton (data, protocol, train, eval, mesh keys) from
`configs/convlstm.py` and replaces the model, view and schedule.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
from typing import Mapping

import ml_collections


def load(path: str | pathlib.Path, arg: str | None = None) -> ml_collections.ConfigDict:
  """`get_config(arg)` of the config file at `path`."""
  path = pathlib.Path(path)
  spec = importlib.util.spec_from_file_location(f"mejax_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def complete_model(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds to `config.model` every setting of its model that it lacks (`models.hyperparameters`:
  the registry's fields with their defaults), so that `--config.model.FIELD=...` can override any
  of them. What the config file set is kept; a model section of an unknown model is left as it
  is (`sweep.check_config` names it)."""
  from mejax import models
  model = config.get("model") if isinstance(config, ml_collections.ConfigDict) else None
  if not isinstance(model, ml_collections.ConfigDict) or model.get("name") not in models.MODELS:
    return config
  with config.unlocked():
    for key, value in models.hyperparameters(model.name).items():
      if key not in model:
        model[key] = value
  return config


def set_dotted(config: ml_collections.ConfigDict, dotted: str, value) -> None:
  """config[dotted] = value, as `--config.DOTTED=value` sets it: any model setting (defaulted
  first), a mapping as a ConfigDict, a list as a tuple; an unknown key or section is refused."""
  *parents, key = dotted.split(".")
  node = config
  for part in parents:
    if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
      raise ValueError(f"override {dotted!r}: the config has no section {part!r}")
    node = node[part]
  if key not in node and parents == ["model"]:
    # Any setting of the model, as on the command line (config_files.complete_model).
    from mejax import models
    defaults = models.hyperparameters(node.name) if node.get("name") in models.MODELS else {}
    if key in defaults:
      with node.unlocked():
        node[key] = defaults[key]
  if key not in node:
    raise ValueError(f"override {dotted!r}: no such config key ({'.'.join(parents) or 'config'} "
                     f"has: {', '.join(sorted(node.keys()))})")
  if isinstance(value, Mapping):
    value = ml_collections.ConfigDict(value)
  elif isinstance(value, list):
    value = tuple(value)
  with node.ignore_type():
    node[key] = value


def skeleton(config_dir: str | pathlib.Path, model: dict) -> ml_collections.ConfigDict:
  """configs/convlstm.py's experiment keys with `model` as the model section."""
  c = load(pathlib.Path(config_dir) / "convlstm.py")
  c.model = ml_collections.ConfigDict(dict(model, dtype="float32"))
  return c


def paper_sgd(c: ml_collections.ConfigDict, *, learning_rate: float, momentum: float,
              batch_size: int, num_epochs: int, eval_every: int, flip: bool = False
              ) -> ml_collections.ConfigDict:
  """The papers' plain SGD training: no class-weighted sampling or loss, no rotation, flips only
  where the paper used them."""
  c.train.optimizer = "sgd"
  c.train.momentum = momentum
  c.train.learning_rate = learning_rate
  c.train.batch_size = batch_size
  c.train.num_epochs = num_epochs
  c.train.balanced_sampling = False
  c.train.class_weighted_loss = False
  c.train.flip = flip
  c.train.rotate_degrees = 0.0
  c.eval.every_epochs = eval_every
  return c


def smoke(c: ml_collections.ConfigDict, epochs: int = 8) -> ml_collections.ConfigDict:
  """A paper config resized to run on synthetic_me/micro on 2 CPU cores in a few minutes."""
  c.data.datasets = ("synthetic_me/micro",)
  c.protocol.name = "loso"
  c.train.num_epochs = epochs
  c.train.fold_strategy = "loop"
  c.eval.every_epochs = epochs
  return c


def smoke_motion(c: ml_collections.ConfigDict, momentum: float | None = None
                 ) -> ml_collections.ConfigDict:
  """Smoke presets of the raw-frame 3D CNNs (STCNN, FuseNet, Talluri et al.'s models): frames
  relative to the view's first frame, and SGD momentum where the paper had none.

  Not the papers' settings. Without them these CNNs stay at chance within 8 epochs on
  synthetic_me (STCNN, 4 LOSO folds: UAR 0.35 on raw frames; 0.38 with momentum 0.9 alone; 0.74
  with both), as the ConvLSTM smoke preset found for its backbone.
  """
  c.data.relative_to_first_frame = True
  if momentum is not None:
    c.train.momentum = momentum
  return c


def parse_preset(arg: str | None, variants: tuple[str, ...], file: str) -> tuple[str, bool]:
  """A preset argument "VARIANT", "smoke" or "VARIANT,smoke" -> (variant or "", smoke).

  `variants` are the file's model / experiment variants; "smoke" resizes any of them to run on
  synthetic_me on this machine (e.g. configs/model_a.py:split,smoke).
  """
  parts = [p for p in (arg or "").split(",") if p]
  unknown = [p for p in parts if p != "smoke" and p not in variants]
  chosen = [p for p in parts if p in variants]
  if unknown or len(chosen) > 1 or len(set(parts)) != len(parts):
    combined = " or VARIANT,smoke" if variants else ""
    raise ValueError(f"Unknown preset {arg!r} for {file}; known: "
                     f"{', '.join(variants + ('smoke',))}{combined}")
  return (chosen[0] if chosen else ""), "smoke" in parts


def _unknown_override(argv: list[str], config) -> str | None:
  """The first `--config.a.b=value` of argv naming a key `config` lacks, described."""
  for arg in argv[1:]:
    if not arg.startswith("--config."):
      continue
    path = arg[len("--config."):].split("=", 1)[0]
    node, parts = config, path.split(".")
    for depth, part in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        where = ".".join(parts[:depth]) or "the config"
        known = ", ".join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) \
            else "no keys"
        return f"--config.{path}: no such config key ({where} has: {known})"
      node = node[part]
  return None


def parse_flags_or_exit(argv: list[str]) -> list[str]:
  """The absl flags parser of the commands that take --config: a wrong flag, config file, preset
  or override ends in one line `error: ...` on stderr with exit status 2, not in tracebacks."""
  import sys

  from absl import flags
  _complete_models_on_load()
  try:
    remaining = flags.FLAGS(argv)
    if "config" in flags.FLAGS and flags.FLAGS["config"].present:
      flags.FLAGS.config.keys()  # a config file that failed to load raises only when read
      _drop_model_defaults_not_overridden(argv)
    return remaining
  except OSError as e:  # the --config file could not be loaded
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    message = f"--config: {lines[-1] if lines else e}"
  except flags.Error as e:  # absl's own: unknown flag, bad value, missing required flag
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    # A config file that fails to load: absl embeds its traceback; keep the flag and the error.
    message = lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"
  except Exception as e:  # noqa: BLE001  an override of a key the config lacks, or its value
    message = _unknown_override(argv, _config_of(argv)) or f"--config: {type(e).__name__}: {e}"
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _complete_models_on_load() -> None:
  """Makes the --config flag complete the model section of the config file it loads
  (`complete_model`) before the command line's overrides apply, remembering the keys it added.
  Done here, once for every command and config file: a config file may change the model's name
  after taking another's section (configs/model_a.py's variants), so only the loaded config
  knows its model."""
  from absl import flags
  if "config" not in flags.FLAGS:
    return
  parser = flags.FLAGS["config"].parser
  if getattr(parser, "added_model_keys", None) is not None:
    return
  load_config = parser.parse

  def parse(argument):
    config = load_config(argument)
    model = config.get("model") if isinstance(config, ml_collections.ConfigDict) else None
    if isinstance(model, ml_collections.ConfigDict):
      before = set(model)
      complete_model(config)
      parser.added_model_keys = set(model) - before
    return config

  parser.parse = parse
  parser.added_model_keys = set()


_MODEL_OVERRIDE = re.compile(r"--?(?:no)?config\.model\.([^=.]+)")


def _drop_model_defaults_not_overridden(argv: list[str]) -> None:
  """Takes the keys `_complete_models_on_load` added out of the model section again unless the
  command line overrides them: the model takes the same defaults either way, and config.json
  (which a resume compares) stays what the same config gives from Python."""
  from absl import flags
  config = flags.FLAGS.config
  added = getattr(flags.FLAGS["config"].parser, "added_model_keys", None) or set()
  if not isinstance(config, ml_collections.ConfigDict) or not added:
    return
  overridden = {m.group(1) for m in map(_MODEL_OVERRIDE.match, argv[1:]) if m}
  with config.unlocked():
    for key in sorted(added - overridden):
      if key in config.model:
        del config.model[key]


def _config_of(argv: list[str]) -> ml_collections.ConfigDict | None:
  """The config that argv's --config names (file.py[:preset]), or None."""
  for i, arg in enumerate(argv):
    spec = (arg.split("=", 1)[1] if arg.startswith("--config=") else
            argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
    if spec:
      path, _, preset = spec.partition(":")
      try:
        return complete_model(load(path, preset or None))
      except Exception:  # noqa: BLE001  reported by the flag parser itself
        return None
  return None


# What a user's settings, data or files can cause; a command ends on them with one line.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, MemoryError, FloatingPointError)


def run_command(main, user_errors: tuple[type[BaseException], ...] = ()) -> None:
  """`absl.app.run(main)` for the commands that take --config: a bad flag, config or setting, or
  one of USER_ERRORS + `user_errors` raised by `main`, ends in one line `error: ...` on stderr
  with exit status 2 instead of a traceback."""
  import sys

  from absl import app

  def guarded(argv):
    try:
      return main(argv)
    except USER_ERRORS + tuple(user_errors) as e:
      from mejax import cli
      cli.close_progress_bars()
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)

  app.run(guarded, flags_parser=parse_flags_or_exit)
