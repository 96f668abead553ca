"""python -m mejax.convert WEIGHTS --out DIR: torchvision r3d_18 weights -> a Flax checkpoint.

WEIGHTS is a torchvision `r3d_18` state_dict file the user has (e.g. the Kinetics-400
`r3d_18-b3b3357e.pth`, downloaded elsewhere): `.pth`/`.pt` (read with
`torch.load(weights_only=True)`, never an arbitrary unpickle), `.safetensors` or `.npz`.
DIR becomes an orbax checkpoint of {'params', 'batch_stats'} of `mejax.models.r3d.R3D18` plus
`mejax_weights.json` (architecture, head size, source file and its SHA-256). An experiment starts
from it with `--config.init_from=DIR`: the R3D-18 backbone of the model (the whole network for
`r3d18`, the `backbone` of `convlstm_ae`) takes the imported weights; a head whose size differs
from the experiment's classes stays freshly initialised.

A training checkpoint that wraps the state_dict (under 'state_dict', 'model_state_dict' or
'model') is unwrapped. Anything else is refused with one line `error: WEIGHTS: ...` and exit
status 2: a state_dict of another architecture (naming the missing, unexpected or mis-shaped keys),
a file that is missing, empty, truncated, damaged, of another format, or a pickle holding objects
other than tensors (refused by torch's weights-only loader before any of it runs). DIR appears
only once complete: nothing is left there when converting fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import shutil
import sys
import tempfile

from mejax import cli

WEIGHTS_INFO = "mejax_weights.json"
ARCHITECTURE = "torchvision_r3d_18"


def convert(weights: str | pathlib.Path, out: str | pathlib.Path, *,
            width_multiplier: float = 1.0) -> dict:
  """Writes the checkpoint; returns its info dict.

  `out` appears only complete: the checkpoint and its info are written into a hidden sibling
  folder that is renamed to `out` at the end, and removed when anything fails before that.
  Raises WeightsFileError (a ValueError naming `weights`) when the file is not the state_dict of
  a torchvision r3d_18, FileExistsError when `out` exists.
  """
  from mejax.models import convert as convert_lib
  weights, out = pathlib.Path(weights), pathlib.Path(out).absolute()
  if out.exists():
    raise FileExistsError(f"{out} exists; give a new --out (nothing was overwritten)")
  state_dict = convert_lib.load_state_dict_file(weights)
  try:
    variables = convert_lib.r3d_variables_from_torchvision(state_dict, include_head=True,
                                                           width_multiplier=width_multiplier)
  except (KeyError, ValueError) as e:  # the keys or shapes of another architecture
    message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    raise convert_lib.WeightsFileError(f"{weights}: {message}") from None
  info = {"architecture": ARCHITECTURE, "width_multiplier": width_multiplier,
          "num_classes": int(variables["params"]["fc"]["kernel"].shape[-1]),
          "source": weights.name,
          "source_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
  _write_complete(out, variables, info)
  return info


def _write_complete(out: pathlib.Path, variables: dict, info: dict) -> None:
  """The orbax checkpoint and WEIGHTS_INFO in `out`, which exists only once both are written."""
  import orbax.checkpoint as ocp
  created = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
  out.parent.mkdir(parents=True, exist_ok=True)
  partial = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
  try:
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(partial / "variables", variables)
    checkpointer.wait_until_finished()
    (partial / WEIGHTS_INFO).write_text(json.dumps(info, indent=1))
    if out.exists():  # appeared while writing: rename would replace an empty folder
      raise FileExistsError(f"{out} exists; give a new --out (nothing was overwritten)")
    partial.rename(out)
  except BaseException:
    shutil.rmtree(partial, ignore_errors=True)
    for folder in created:  # parents made for `out` (innermost first), if still empty
      try:
        folder.rmdir()
      except OSError:
        break
    raise


def load(path: str | pathlib.Path) -> tuple[dict, dict]:
  """(variables, info) of a checkpoint written by `convert`."""
  import orbax.checkpoint as ocp
  path = pathlib.Path(path).absolute()
  info_path = path / WEIGHTS_INFO
  if not info_path.exists():
    raise FileNotFoundError(f"init_from {path}: no {WEIGHTS_INFO}; expected a directory written "
                            "by `python -m mejax.convert WEIGHTS --out DIR`")
  info = json.loads(info_path.read_text())
  variables = ocp.StandardCheckpointer().restore(path / "variables")
  return variables, info


def main(argv=None) -> int:
  ap = cli.ArgumentParser(prog="python -m mejax.convert", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("weights", help="torchvision r3d_18 state_dict (.pth, .pt, .safetensors, .npz)")
  ap.add_argument("--out", required=True, help="checkpoint directory to create")
  ap.add_argument("--width_multiplier", type=cli.positive(float), default=1.0,
                  help="R3D width of the weights (1.0 for torchvision's)")
  args = ap.parse_args(argv)
  try:
    info = convert(args.weights, args.out, width_multiplier=args.width_multiplier)
  except (ValueError, FileExistsError, ImportError) as e:  # WeightsFileError is a ValueError
    print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
    return 2
  except OSError as e:  # writing --out failed (no space, no permission); nothing was left there
    print(f"error: {args.out}: cannot be written ({e.strerror or e})", file=sys.stderr)
    return 2
  print(f"{args.weights} -> {args.out}: {info['architecture']}, {info['num_classes']}-way head")
  return 0


if __name__ == "__main__":
  sys.exit(main())
