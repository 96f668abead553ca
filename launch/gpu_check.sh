#!/usr/bin/env bash
# The GPU validation in one call: speed of the paper model and of R3D-18 against PyTorch, the fold
# axis at 8 / 24 / 68 folds, and the 68-fold MEGC sweep with its memory plan (mejax/gpu_check.py).
#
#   launch/gpu_check.sh OUT                # one GPU; OUT/gpu_check.{json,md} (budget: <= 8 min,
#                                          # not yet run on a GPU)
#   launch/gpu_check.sh OUT --dry_run      # tiny sizes on any machine (CI runs it on the CPU)
#   launch/gpu_check.sh OUT --sections=convlstm,megc_sweep
#
# Needs JAX (with its CUDA plugin on a GPU), mejax's Python dependencies and, for the baseline,
# PyTorch; not TensorFlow (the clips are random). PYTHON names the interpreter (default: the
# environment's `python`).
set -euo pipefail
if [[ $# -lt 1 || $1 == -* ]]; then
  echo "usage: launch/gpu_check.sh OUT [--dry_run] [--sections=...] [--steps=N] [--torch=off]" >&2
  exit 2
fi
OUT=$(realpath -m "$1")   # before the cd below: OUT is relative to the caller's directory
shift
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m mejax.gpu_check --out "$OUT" "$@"
