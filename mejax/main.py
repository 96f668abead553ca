"""Entry point: python -m mejax.main --config configs/convlstm.py[:preset] --workdir DIR.

Multi-process (several hosts, or one process per GPU): see mejax/distributed.py and launch/.
A user's mistake or a damaged file ends in one line `error: ...` and exit status 2.
"""

import logging

from absl import app
from absl import flags
from ml_collections import config_flags

from mejax import checkpoints
from mejax import config_files
from mejax import distributed
from mejax import files
from mejax import train

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and plots.")
config_flags.DEFINE_config_file("config", None, "Experiment config file (file.py[:preset]).",
                                lock_config=True)
_DISTRIBUTED = flags.DEFINE_enum(
    "distributed", "auto", list(distributed.MODES),
    "jax.distributed: 'auto' starts it when --coordinator_address / --num_processes > 1 are given "
    "or inside a multi-task srun step; 'on' always (unset values auto-detected); 'off' never.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0's coordinator (e.g. 127.0.0.1:12355).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes of the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0..num_processes-1.")
_LOCAL_DEVICE_IDS = flags.DEFINE_list(
    "local_device_ids", None, "Local devices this process uses (e.g. 0,1,2,3); default: jax's "
    "(all local devices, or one GPU per process under SLURM / Open MPI).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.getLogger("absl").setLevel(logging.WARNING)
  distributed.initialize(
      _DISTRIBUTED.value, coordinator_address=_COORDINATOR.value,
      num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value,
      local_device_ids=[int(i) for i in _LOCAL_DEVICE_IDS.value or []] or None)
  train.train_and_evaluate(flags.FLAGS.config, _WORKDIR.value)


if __name__ == "__main__":
  config_files.run_command(main, user_errors=(checkpoints.WorkdirBusy, files.DiskFull))
