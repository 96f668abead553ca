"""ClipSet -> model inputs ("views"): temporal selection, resize, colour.

A view is a dense uint8 array (N, T, S, S, C) that goes to the devices once; normalisation to
float happens on device inside the step, with constants that do not depend on the data (so no
statistic can leak from a test subject).
"""

from __future__ import annotations

import cv2
import numpy as np

from mejax.data.clipset import ClipSet

# Kinetics-400 statistics (torchvision's video models), used with an imported R3D backbone and as
# the default fixed normalisation.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def onset_to_apex_indices(onset: int, apex: int, offset: int, num_frames: int) -> np.ndarray:
  """Frame indices from onset to apex (inclusive), always `num_frames` long.

  Shorter spans are padded with the last (apex) frame; longer ones are sampled at equal
  intervals, keeping both onset and apex. When the apex is not annotated (-1, e.g. SMIC), the
  span runs from onset to offset.
  """
  end = apex if apex >= 0 else offset
  if end < onset:
    raise ValueError(f"apex/offset {end} before onset {onset}")
  length = end - onset + 1
  if length >= num_frames:
    return onset + np.round(np.linspace(0, length - 1, num_frames)).astype(np.int64)
  return np.concatenate([np.arange(onset, end + 1), np.full(num_frames - length, end)])


def resize_frames(frames: np.ndarray, size: int, grey: bool) -> np.ndarray:
  """(T, H, W, C) uint8 -> (T, size, size, 1 or 3) uint8 with area interpolation."""
  out = []
  for frame in frames:
    if grey and frame.shape[-1] == 3:
      frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    elif not grey and frame.shape[-1] == 1:
      frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    out.append(frame.reshape(size, size, -1))
  return np.stack(out)


def onset_apex_view(clips: ClipSet, num_frames: int = 12, size: int = 64,
                    grey: bool = False) -> np.ndarray:
  """The ConvLSTM paper's input: onset -> apex, padded/sampled to T frames, resized, RGB."""
  views = []
  for i, frames in enumerate(clips.frames):
    try:
      idx = onset_to_apex_indices(int(clips.onset[i]), int(clips.apex[i]), int(clips.offset[i]),
                                  num_frames)
    except ValueError as e:
      raise ValueError(f"Clip {clips.uid[i]}: {e}") from None
    if idx.max() >= len(frames):
      raise ValueError(f"Clip {clips.uid[i]}: frame index {idx.max()} beyond its {len(frames)} "
                       "stored frames")
    views.append(resize_frames(frames[idx], size, grey))
  return np.stack(views)


VIEWS = {"onset_apex": onset_apex_view}


def view_shape(data) -> tuple[int, int, int, int]:
  """(T, H, W, C) of the view a `config.data` section asks for, computed without any clip."""
  if data.view not in VIEWS:
    raise ValueError(f"Unknown view {data.view!r}; known views: {sorted(VIEWS)}")
  return (data.num_frames, data.size, data.size, 1 if data.grey else 3)


def make_view(clips: ClipSet, kind: str, **kwargs) -> np.ndarray:
  if kind not in VIEWS:
    raise ValueError(f"Unknown view {kind!r}; known views: {sorted(VIEWS)}")
  return VIEWS[kind](clips, **kwargs)
