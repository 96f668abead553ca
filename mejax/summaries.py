"""TensorBoard scalars through tensorboard's own event writer (no TensorFlow needed)."""

from __future__ import annotations

import pathlib
import time

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class ScalarWriter:

  def __init__(self, logdir: pathlib.Path):
    self._writer = EventFileWriter(str(logdir))

  def write(self, step: int, scalars: dict[str, float]) -> None:
    values = [Summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()]
    self._writer.add_event(Event(summary=Summary(value=values), wall_time=time.time(), step=step))

  def close(self) -> None:
    self._writer.flush()
    self._writer.close()


class NullWriter:
  """Stands in for ScalarWriter on processes that write nothing (all but process 0)."""

  def write(self, step: int, scalars: dict[str, float]) -> None:
    del step, scalars

  def close(self) -> None:
    pass
