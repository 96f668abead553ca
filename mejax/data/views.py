"""ClipSet -> model inputs ("views"): temporal selection, resize, colour.

A view is a dense uint8 array (N, T, S, S, C) that goes to the devices once; normalisation to
float happens on device inside the step, with constants that do not depend on the data (so no
statistic can leak from a test subject).
"""

from __future__ import annotations

import concurrent.futures
import os

import cv2
import numpy as np
import tqdm

from mejax.data.clipset import ClipSet

# Kinetics-400 statistics (torchvision's video models), used with an imported R3D backbone and as
# the default fixed normalisation.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)

# The version of the view computation: this module and the mejax.preprocess code it calls
# (temporal selection, magnification, flow, strain, dynamic images, regions, resizing). Bump it
# with any change that alters a view's pixels: it is part of the view cache's key
# (mejax.data.view_cache.cache_path), so views cached by older code are rebuilt.
VIEW_VERSION = 1


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


# ---- views ---------------------------------------------------------------------------------------
# Each is a temporal selection of the stored frames, an optional Eulerian magnification
# (data.magnify_alpha), a representation (the frames, their dynamic image, or the onset -> apex
# optical flow), optional face regions stacked on channels (data.regions) and a resize to
# data.size. All are uint8 so that they cache and go to the devices like the frames do.

TEMPORAL = ("onset_apex", "first_n", "apex_window", "uniform")
REPRESENTATIONS = ("dynamic_image", "flow")
KINDS = TEMPORAL + REPRESENTATIONS
REGION_LAYOUTS = ("", "fusenet", "dynamic_image")
_REGION_COUNT = {"": 1, "fusenet": 2, "dynamic_image": 3}


def _apex_or_middle(frames: np.ndarray, onset: int, apex: int, offset: int) -> int:
  if apex >= 0:
    return apex
  # Not annotated (SMIC): the frame most unlike the onset (STRCN's argmax_t std(I(t) - I(0))).
  from mejax.preprocess import flow
  return onset + flow.estimate_apex(frames[onset:offset + 1])


def temporal_indices(kind: str, frames: np.ndarray, onset: int, apex: int, offset: int,
                     num_frames: int) -> np.ndarray:
  """Stored-frame indices of a view kind.

  onset_apex: onset -> apex in num_frames (`onset_to_apex_indices`). first_n: the num_frames
  frames from the onset (Reddy et al.'s first D frames), the last one repeated when the clip is
  shorter. apex_window: num_frames centred on the apex (Talluri et al.: D/2 before, D/2 after),
  edge frames repeated. uniform: num_frames spread evenly over onset..offset (STRCN-A's
  fixed-length clips). dynamic_image: onset..offset. flow: [onset, apex].
  """
  last = len(frames) - 1
  if kind == "onset_apex":
    return onset_to_apex_indices(onset, apex, offset, num_frames)
  if kind == "first_n":
    return np.minimum(onset + np.arange(num_frames), last)
  if kind == "apex_window":
    centre = _apex_or_middle(frames, onset, apex, offset)
    return np.clip(centre - num_frames // 2 + np.arange(num_frames), 0, last)
  if kind == "uniform":
    return np.rint(np.linspace(onset, offset, num_frames)).astype(np.int64)
  if kind == "dynamic_image":
    return np.arange(onset, offset + 1)
  if kind == "flow":
    return np.asarray([onset, _apex_or_middle(frames, onset, apex, offset)])
  raise ValueError(f"Unknown view {kind!r}; known views: {KINDS}")


def _grey(frames: np.ndarray) -> np.ndarray:
  if frames.shape[-1] == 1:
    return frames
  return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])[..., None]


def flow_to_uint8(flow_field: np.ndarray, flow_range: float) -> np.ndarray:
  """(H, W, 2) flow in pixels -> uint8, 128 = no motion, 0 / 255 = -/+ flow_range pixels."""
  scaled = np.clip(flow_field / flow_range, -1.0, 1.0)
  return np.rint(127.5 + 127.5 * scaled).astype(np.uint8)


def strain_to_uint8(strain: np.ndarray, strain_range: float) -> np.ndarray:
  """(H, W) optical strain magnitude -> (H, W, 1) uint8, 0 = none, 255 = strain_range or more."""
  return np.rint(255.0 * np.clip(strain / strain_range, 0.0, 1.0)).astype(np.uint8)[..., None]


def clip_view(frames: np.ndarray, onset: int, apex: int, offset: int, data) -> np.ndarray:
  """The view of one clip: uint8 (T, size, size, C) as `view_shape(data)` says."""
  kind, size, grey = data.view, data.size, bool(data.grey)
  regions = data.get("regions", "")
  idx = temporal_indices(kind, frames, onset, apex, offset, data.num_frames)
  if idx.size == 0:
    raise ValueError(f"no frames between onset {onset} and offset {offset}")
  if idx.max() >= len(frames) or idx.min() < 0:
    raise ValueError(f"frame indices {idx.min()}..{idx.max()} outside the {len(frames)} stored "
                     "frames")
  alpha = data.get("magnify_alpha", 0.0)
  if alpha:
    # Magnify the stored span at its own frame rate, as the papers magnify the video, then
    # select: the IIR band-pass is per frame, so filtering a resampled or two-frame (flow) clip
    # would amplify other frequencies.
    from mejax.preprocess import magnify
    first = int(idx.min())
    clip = magnify.magnify(frames[first:int(idx.max()) + 1], alpha)[idx - first]
  else:
    clip = frames[idx]
  if grey or kind == "flow":
    clip = _grey(clip)
  elif clip.shape[-1] == 1:  # a grey dataset (SAMM, CK+) in a colour view: grey in every channel
    clip = np.repeat(clip, 3, axis=-1)
  if kind == "dynamic_image":
    from mejax.preprocess import dynamic_image
    clip = dynamic_image.to_uint8(dynamic_image.dynamic_image(clip))[None]
  elif kind == "flow":
    from mejax.preprocess import flow
    small = resize_frames(clip, size, grey=True)  # flow at the model's resolution
    field = flow.optical_flow(small[0], small[1], data.get("flow_method", "farneback"))
    out = flow_to_uint8(field, data.get("flow_range", 4.0))
    if data.get("flow_strain", False):
      out = np.concatenate([out, strain_to_uint8(flow.optical_strain(field),
                                                 data.get("strain_range", 1.0))], axis=-1)
    return out[None]
  if regions:
    from mejax.preprocess import regions as regions_lib
    return regions_lib.face_regions(clip, regions, size)
  return resize_frames(clip, size, grey)


def make_view(clips: ClipSet, data, workers: int | None = None) -> np.ndarray:
  """The view a `config.data` section asks for (data.view, num_frames, size, grey, regions,
  magnify_alpha; for flow: flow_method, flow_range, flow_strain, strain_range).

  Clips are processed by `workers` threads (default: this process's CPUs; OpenCV and numpy
  release the GIL in magnification, flow and resizing), in order: the view does not depend on
  the count. A progress bar shows on a terminal."""
  view_shape(data)  # validates the keys

  def one(i: int) -> np.ndarray:
    try:
      return clip_view(clips.frames[i], int(clips.onset[i]), int(clips.apex[i]),
                       int(clips.offset[i]), data)
    except ValueError as e:
      raise ValueError(f"Clip {clips.uid[i]}: {e}") from None

  workers = workers or len(os.sched_getaffinity(0))
  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    out = list(tqdm.tqdm(pool.map(one, range(len(clips))), total=len(clips), unit="clip",
                         desc=f"{data.view} view", leave=False, disable=None))
  return np.stack(out)


def view_shape(data) -> tuple[int, int, int, int]:
  """(T, H, W, C) of the view a `config.data` section asks for, computed without any clip."""
  for key in ("num_frames", "size"):
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"data.{key}={value!r}: must be an integer >= 1")
  if data.view not in KINDS:
    raise ValueError(f"Unknown view {data.view!r} (data.view); known views: {KINDS}")
  regions = data.get("regions", "")
  if regions not in REGION_LAYOUTS:
    raise ValueError(f"Unknown data.regions {regions!r}; known: {REGION_LAYOUTS}")
  if data.view == "flow":
    if regions:
      raise ValueError("data.view 'flow' takes no data.regions")
    from mejax.preprocess import flow
    method = data.get("flow_method", "farneback")
    if method not in flow.FLOW_METHODS:
      raise ValueError(f"Unknown data.flow_method {method!r}; known: {flow.FLOW_METHODS}")
    return (1, data.size, data.size, 3 if data.get("flow_strain", False) else 2)
  channels = (1 if data.grey else 3) * _REGION_COUNT[regions]
  frames = 1 if data.view == "dynamic_image" else data.num_frames
  return (frames, data.size, data.size, channels)
