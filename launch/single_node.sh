#!/bin/bash
# Sweep on one machine with several GPUs.
#
#   launch/single_node.sh CONFIG WORKDIR [mejax.main flags...]
#       One process driving every local GPU: JAX's normal single-host mode, no jax.distributed.
#   PER_GPU=1 launch/single_node.sh CONFIG WORKDIR [flags...]
#       One process per GPU (NUM_GPUS of them, default: all that nvidia-smi lists) on a loopback
#       coordinator; process 0 writes the outputs. Mostly for testing the multi-process path
#       before a multi-node run; one process is usually as fast on one node.
#
# Example: launch/single_node.sh configs/convlstm.py:paper runs/paper --config.train.num_epochs=30
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,10p' "$0"; exit 2
fi
CONFIG=$1; WORKDIR=$2; shift 2
PYTHON=${PYTHON:-.venv/bin/python}
cd "$(dirname "$0")/.."

export TF_CPP_MIN_LOG_LEVEL=2
export TF_FORCE_GPU_ALLOW_GROWTH=true  # TensorFlow (TFDS reading) stays off the GPUs' memory

if [[ "${PER_GPU:-0}" != 1 ]]; then
  exec "${PYTHON}" -m mejax.main --config "${CONFIG}" --workdir "${WORKDIR}" --distributed=off "$@"
fi

NUM_GPUS=${NUM_GPUS:-$(nvidia-smi --list-gpus | wc -l)}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
pids=()
# If one process fails, stop the others (they would wait for it at the next collective).
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for ((i = 0; i < NUM_GPUS; i++)); do
  # Each process sees only its own GPU, as its local device 0.
  CUDA_VISIBLE_DEVICES=$i "${PYTHON}" -m mejax.main --config "${CONFIG}" --workdir "${WORKDIR}" \
    --coordinator_address="127.0.0.1:${PORT}" --num_processes="${NUM_GPUS}" --process_id="$i" \
    "$@" &
  pids+=($!)
done
status=0
for ((n = 0; n < NUM_GPUS; n++)); do
  wait -n || { status=$?; break; }
done
trap - EXIT
if ((status)); then
  kill "${pids[@]}" 2>/dev/null || true
fi
exit "${status}"
