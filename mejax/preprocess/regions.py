"""Facial regions of interest cut from eye-aligned face crops (FuseNet; Le et al.'s dynamic images).

The papers place their regions with 68 DLib landmarks (Reddy et al. §III-B for MicroExpFuseNet;
Le et al. §III-C, Fig. 2). We have no landmark model, so the regions here are FIXED boxes of the
`face` crop of `mejax.preprocess.faces` (square, side FACE_SIDE d = 2.5 d with d the inter-ocular
distance, eyes horizontal and centred, the eye line FACE_EYE_LINE = 34 % of the side from the
top). In that crop the eye centres are known exactly (`eye_centres`), so every box is given in
units of d around the midpoint of the eyes, from average frontal-face proportions (inner brow
ends ~0.1 d and outer ends ~0.9 d from the midline, ~0.35 d above the eye line; eye corners
+-0.25 d around each eye centre; nostrils ~0.75 d and the mouth ~1.15 d below the eye line,
mouth corners ~0.45 d from the midline). They fit a frontal, neutral-to-mildly-expressive face;
a face turned or shaped far from average will have parts of a region outside its box.

Boxes, as (left, top, right, bottom) in d, x right of and y below the midpoint of the eyes (the
crop itself spans x in [-1.25, 1.25] d and y in [-0.85, 1.65] d; eyes at (-0.5, 0) and (0.5, 0)):

  layout "fusenet" (Reddy et al.: "the eye portion (including both eyes)" and the mouth; MODELS.md
  §3 names the second one nose-mouth):
    eyes        (-1.00, -0.70, 1.00, 0.40)  both eyes and brows, 2.0 d x 1.1 d
    nose_mouth  (-0.75,  0.30, 0.75, 1.50)  lower nose, mouth and mouth corners, 1.5 d x 1.2 d
  layout "dynamic_image" (Le et al. Fig. 2, eyes masked: "eye cascades and blinking are not ME"):
    eyebrows    (-1.00, -0.70, 1.00, -0.15) both brows and the lower forehead the crop holds
    nose        (-0.35,  0.15, 0.35, 0.85)  nose below the eye mask, to the nostrils
    mouth       (-0.60,  0.85, 0.60, 1.45)  lips and mouth corners
  `eye_mask_box`: (-0.85, -0.15, 0.85, 0.15), both eyes from outer corner to outer corner, lids
  included; `mask_eyes` blanks it (the dynamic-image regions already avoid it, up to the one-pixel
  rounding below).

Pixel boxes are (x0, y0, x1, y1) with exclusive ends, used as image[y0:y1, x0:x1]: the box in d is
mapped to pixel-edge coordinates (pixel i spans [i, i + 1)) and rounded outwards (floor / ceil),
then clipped to the crop.

`crop_regions` resizes every box of every frame to out_size x out_size (cv2.INTER_AREA, so boxes
of other aspect ratios are stretched, as a landmark box resized to the network's input would be);
`stack_regions` puts them on the channel axis in `REGION_ORDER` (FuseNet: channel 0 = eyes,
channel 1 = nose_mouth for grey clips).
"""

from __future__ import annotations

import math
from typing import Mapping

import cv2
import numpy as np

from mejax.preprocess import faces

LAYOUTS = ("fusenet", "dynamic_image")

# Boxes in inter-ocular distances around the midpoint of the eyes (module docstring).
_BOXES_IN_D = {
    "fusenet": {
        "eyes": (-1.0, -0.7, 1.0, 0.4),
        "nose_mouth": (-0.75, 0.3, 0.75, 1.5),
    },
    "dynamic_image": {
        "eyebrows": (-1.0, -0.7, 1.0, -0.15),
        "nose": (-0.35, 0.15, 0.35, 0.85),
        "mouth": (-0.6, 0.85, 0.6, 1.45),
    },
}
_EYE_MASK_IN_D = (-0.85, -0.15, 0.85, 0.15)

# Channel order of `stack_regions`.
REGION_ORDER = {layout: tuple(boxes) for layout, boxes in _BOXES_IN_D.items()}

# Rounding slack: 0.3 * 64 must floor to 19, not 18.
_EPS = 1e-9


def eye_distance(size: int) -> float:
  """Inter-ocular distance d in pixels of a size x size `face` crop."""
  return size / faces.FACE_SIDE


def eye_centres(size: int) -> tuple[tuple[float, float], tuple[float, float]]:
  """(left, right) eye centres (x, y) of a size x size `face` crop, in OpenCV pixel coordinates
  (pixel centres at integers; 0.3 size - 0.5 and 0.7 size - 0.5 across, 0.34 size - 0.5 down)."""
  mid_x, mid_y = _eye_midpoint_edges(size)
  half = eye_distance(size) / 2
  return (mid_x - half - 0.5, mid_y - 0.5), (mid_x + half - 0.5, mid_y - 0.5)


def _eye_midpoint_edges(size: int) -> tuple[float, float]:
  """Midpoint of the eyes in pixel-edge coordinates (the crop spans [0, size])."""
  return size / 2, faces.FACE_EYE_LINE * size


def _to_pixels(box_in_d, size: int) -> tuple[int, int, int, int]:
  mid_x, mid_y = _eye_midpoint_edges(size)
  d = eye_distance(size)
  left, top, right, bottom = box_in_d
  x0 = max(0, math.floor(mid_x + left * d + _EPS))
  y0 = max(0, math.floor(mid_y + top * d + _EPS))
  x1 = min(size, math.ceil(mid_x + right * d - _EPS))
  y1 = min(size, math.ceil(mid_y + bottom * d - _EPS))
  if x1 <= x0 or y1 <= y0:
    raise ValueError(f"a {size}x{size} crop is too small for the box {box_in_d} (in d)")
  return x0, y0, x1, y1


def region_boxes(size: int, layout: str = "fusenet") -> dict[str, tuple[int, int, int, int]]:
  """{region: (x0, y0, x1, y1)} pixel boxes of a size x size `face` crop, in `REGION_ORDER`."""
  if layout not in LAYOUTS:
    raise ValueError(f"unknown region layout {layout!r}; expected one of {LAYOUTS}")
  if size < 1:
    raise ValueError(f"size must be positive, got {size}")
  return {name: _to_pixels(box, size) for name, box in _BOXES_IN_D[layout].items()}


def eye_mask_box(size: int) -> tuple[int, int, int, int]:
  """(x0, y0, x1, y1) of both eyes in a size x size `face` crop (module docstring)."""
  return _to_pixels(_EYE_MASK_IN_D, size)


def _check_clip(clip: np.ndarray) -> np.ndarray:
  clip = np.asarray(clip)
  if clip.ndim != 4 or not all(clip.shape):
    raise ValueError(f"expected a (T, H, W, C) clip, got shape {clip.shape}")
  return clip


def mask_eyes(clip: np.ndarray, value: float = 0) -> np.ndarray:
  """Copy of a square (T, S, S, C) `face`-crop clip with `eye_mask_box(S)` set to `value`.

  On a float dynamic image 0 means "no change". On a `to_uint8` image, pass the grey level
  that DI = 0 maps to for a neutral mask (or mask the float DI before `to_uint8`).
  """
  clip = _check_clip(clip)
  if clip.shape[1] != clip.shape[2]:
    raise ValueError(f"expected square frames of a face crop, got {clip.shape[1:3]}")
  x0, y0, x1, y1 = eye_mask_box(clip.shape[1])
  masked = clip.copy()
  masked[:, y0:y1, x0:x1] = value
  return masked


def crop_regions(clip: np.ndarray, boxes: Mapping[str, tuple[int, int, int, int]],
                 out_size: int) -> dict[str, np.ndarray]:
  """{region: (T, out_size, out_size, C)} crops of a (T, H, W, C) clip, same dtype, in the order
  of `boxes`; each box is resized with cv2.INTER_AREA (float clips stay float, uint8 are rounded
  by OpenCV). A single image is a clip of one frame: `crop_regions(image[None], ...)`."""
  clip = _check_clip(clip)
  if out_size < 1:
    raise ValueError(f"out_size must be positive, got {out_size}")
  _, height, width, channels = clip.shape
  crops = {}
  for name, (x0, y0, x1, y1) in boxes.items():
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
      raise ValueError(f"region {name!r} box {(x0, y0, x1, y1)} is not inside the "
                       f"{width}x{height} frames")
    crops[name] = np.stack([
        cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), (out_size, out_size),
                   interpolation=cv2.INTER_AREA).reshape(out_size, out_size, channels)
        for frame in clip])
  return crops


def stack_regions(crops: Mapping[str, np.ndarray], layout: str = "fusenet") -> np.ndarray:
  """(T, S, S, R * C): the crops of `layout`'s regions concatenated on the channel axis in
  `REGION_ORDER[layout]` (FuseNet with grey crops: channel 0 eyes, channel 1 nose_mouth)."""
  if layout not in LAYOUTS:
    raise ValueError(f"unknown region layout {layout!r}; expected one of {LAYOUTS}")
  missing = [name for name in REGION_ORDER[layout] if name not in crops]
  if missing:
    raise ValueError(f"crops lack the {layout} regions {missing}; got {sorted(crops)}")
  return np.concatenate([crops[name] for name in REGION_ORDER[layout]], axis=-1)


def face_regions(clip: np.ndarray, layout: str, out_size: int) -> np.ndarray:
  """The regions of `layout` of a square (T, S, S, C) `face`-crop clip, stacked on channels.

  "dynamic_image" masks the eyes first (`mask_eyes`, value 0), so the one-pixel overlap that
  outward rounding can leave between the brow box and the eye mask is blank too.
  """
  clip = _check_clip(clip)
  if clip.shape[1] != clip.shape[2]:
    raise ValueError(f"expected square frames of a face crop, got {clip.shape[1:3]}")
  if layout == "dynamic_image":
    clip = mask_eyes(clip)
  return stack_regions(crop_regions(clip, region_boxes(clip.shape[1], layout), out_size), layout)
