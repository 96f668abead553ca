"""TensorBoard scalars through tensorboard's own event writer (no TensorFlow needed).

The run's history in its checkpoint is the record; the event files mirror it, one event per
epoch. A resume that finds events the checkpoint does not hold (an epoch written before a kill
undid its checkpoint, or a damaged checkpoint set aside) rewrites the event files from the
history, so no epoch appears twice.
"""

from __future__ import annotations

import logging
import pathlib
import time

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

log = logging.getLogger(__name__)

_EVENT_FILES = "events.out.tfevents.*"


def _scalars(record: dict) -> dict[str, float]:
  return {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "epoch"}


def _written_steps(logdir: pathlib.Path) -> list[int] | None:
  """The steps of the scalar events in `logdir`, or None when an event file cannot be read."""
  from tensorboard.backend.event_processing import event_file_loader
  steps = []
  try:
    for path in sorted(logdir.glob(_EVENT_FILES)):
      for event in event_file_loader.EventFileLoader(str(path)).Load():
        if event.summary.value:
          steps.append(event.step)
  except Exception:  # noqa: BLE001  a damaged event file is rewritten like a stale one
    return None
  return steps


class ScalarWriter:
  """Scalars of one epoch a step, each epoch of `history` written once.

  Construction brings the event files in line with `history` (the epochs the restored checkpoint
  holds); `write_new(history)` then adds the epochs not written yet.
  """

  def __init__(self, logdir: pathlib.Path, history: list[dict]):
    logdir = pathlib.Path(logdir)
    held = [record["epoch"] for record in history]
    steps = _written_steps(logdir) if logdir.exists() else []
    stale = steps is None or sorted(steps) != held[:len(steps)] or len(set(steps)) != len(steps)
    if stale:
      old = sorted(logdir.glob(_EVENT_FILES))
      log.info("Rewriting the TensorBoard events in %s from the checkpoint's history (%d "
               "epochs): they held epochs the checkpoint does not", logdir, len(held))
      for path in old:
        path.unlink()
      steps = []
    self._writer = EventFileWriter(str(logdir))
    self.written = len(steps)
    self.write_new(history)

  def write_new(self, history: list[dict]) -> None:
    """Writes the epochs of `history` after the first `written`."""
    for record in history[self.written:]:
      values = [Summary.Value(tag=k, simple_value=float(v))
                for k, v in _scalars(record).items()]
      self._writer.add_event(Event(summary=Summary(value=values), wall_time=time.time(),
                                   step=record["epoch"]))
    if len(history) > self.written:
      self._writer.flush()
      self.written = len(history)

  def close(self) -> None:
    self._writer.flush()
    self._writer.close()


class NullWriter:
  """Stands in for ScalarWriter on processes that write nothing (all but process 0)."""

  def __init__(self, logdir=None, history=()):
    del logdir, history

  def write_new(self, history: list[dict]) -> None:
    del history

  def close(self) -> None:
    pass
