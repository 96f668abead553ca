"""Face detection, eye-based alignment and cropping of raw (uncropped) releases.

Raw releases (whole camera frames) are turned into face clips like the cropped releases: the
face and both eyes are located ONCE per clip on a reference frame, one affine transform (rotate
so the eyes are horizontal, scale, crop) is computed from them, and that same transform is
applied to every frame, so the stored clip has no detector jitter (a micro-expression moves a few
pixels; per-frame boxes would move more).

Only OpenCV's shipped Haar cascades are used (`cv2.data.haarcascades`; no downloads):
  * face: `detect_face` runs the attempts of `FACE_ATTEMPTS` in order (standard settings first,
    then more permissive ones); the largest face of the first attempt that finds one wins.
    `align` moves on to the next boxes (of the same or later attempts) when that box has no
    eye pair, and keeps the first box that has one.
  * eyes: `detect_eyes` runs the eye cascades in the upper half of the face box (normalised to
    `_EYE_FACE_WIDTH` px, so small faces have eyes the 20 px cascade can see) and keeps the
    best left/right pair. When none is found, `align` falls back to a geometric estimate from
    the face box and says so in `Alignment.eye_source`.

Two crop rules (`CROP_RULES`), both in the aligned frame (eye line horizontal), with
d = the distance between the eye centres:
  * "face": a square box, side `FACE_SIDE` * d (2.5 d), centred horizontally between the eyes,
    with the eye line `FACE_EYE_LINE` (34 %) of the side from its top: 0.85 d above the eyes
    (brows and lower forehead), 1.65 d below (mouth and chin).
  * "strcn": Xia et al. STRCN eq. (1) with (delta1..delta4) = (0.4, 0.6, 2.2, 1.8): a box
    1.8 d wide and 2.2 d high whose top-left corner is 0.4 d left of and 0.6 d above the left
    eye (see `_strcn_box` for how the paper's formula is read), resized (non-square) to size x size.

Coordinates are OpenCV's: x right, y down, pixel centres at integers; "left eye" is the eye on
the left of the image. Everything is deterministic: the same frames give byte-identical crops.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import math

import cv2
import numpy as np

from mejax.preprocess import frames as frames_lib

log = logging.getLogger(__name__)

CROP_RULES = ("face", "strcn")

# "face" rule: square side in inter-ocular distances, and where the eye line lies (fraction of
# the side from the top). 2.5 d x 2.5 d holds brows to chin of a frontal face.
FACE_SIDE = 2.5
FACE_EYE_LINE = 0.34

# STRCN eq. (1): (delta1, delta2, delta3, delta4) of Xia et al. (MODELS.md §5).
STRCN_DELTAS = (0.4, 0.6, 2.2, 1.8)

# Where the eyes of a frontal face lie in a Haar face box, as fractions of its width/height
# (measured on grace_hopper.jpg and the synthetic faces); used when the eye cascade fails.
_EYE_ESTIMATE = ((0.32, 0.40), (0.68, 0.40))

# Smallest face searched, as a fraction of the image's shorter side (and never below 24 px, the
# cascade's window): smaller boxes are background texture, and skipping them is faster.
_MIN_FACE_FRACTION = 1 / 8
_MIN_FACE_PX = 24

# Face boxes besides the first one searched for eyes when the first has no eye pair.
_MAX_EXTRA_BOXES = 8

# Eye search: the face box is resized to this width first (eyes then are ~35-65 px).
_EYE_FACE_WIDTH = 300


class FaceNotFound(frames_lib.ClipError):
  """No frontal face in the reference frame of a clip."""


@dataclasses.dataclass(frozen=True)
class FaceAttempt:
  """One run of a face cascade: which cascade, on which grey image, with which settings."""
  cascade: str            # file in cv2.data.haarcascades
  channel: str            # see `_grey`
  scale_factor: float
  min_neighbors: int

  def describe(self) -> str:
    name = self.cascade.removeprefix("haarcascade_").removesuffix(".xml")
    return (f"{name} on {self.channel} (scaleFactor {self.scale_factor}, minNeighbors "
            f"{self.min_neighbors})")


# Tried in order; the largest face of the first attempt that finds one wins. The first is
# OpenCV's standard setting and finds real frontal faces; the others, on the tree-based alt2
# cascade (which, unlike the default one, does not fire on noise even when permissive), recover
# faces it misses: faces filling most of a small frame, dark skin on a low-contrast grey (the red
# channel keeps most of the contrast of skin).
FACE_ATTEMPTS = (
    FaceAttempt("haarcascade_frontalface_default.xml", "grey_equalised", 1.1, 5),
    FaceAttempt("haarcascade_frontalface_alt2.xml", "grey", 1.05, 3),
    FaceAttempt("haarcascade_frontalface_alt2.xml", "red", 1.03, 2),
)


@dataclasses.dataclass(frozen=True)
class EyeAttempt:
  """One run of an eye cascade on the eye band of a face box."""
  cascade: str
  channel: str
  scale_factor: float
  min_neighbors: int


# Local contrast (CLAHE) rather than global equalisation: equalising the whole eye band lets
# spectacle frames and hair dominate (grace_hopper.jpg's eyes are then missed).
EYE_ATTEMPTS = (
    EyeAttempt("haarcascade_eye.xml", "grey_clahe", 1.05, 2),
    EyeAttempt("haarcascade_eye_tree_eyeglasses.xml", "grey", 1.05, 2),
)


@dataclasses.dataclass(frozen=True, eq=False)
class Alignment:
  """The crop of one clip, computed once on its reference frame.

  face_box: (x, y, w, h) of the detected face; face_detector: the `FaceAttempt` that found it.
  left_eye, right_eye: eye centres (x, y) in the source frame, left/right as seen in the image.
  eye_source: "detected" (eye cascade) or "estimated from the face box" (no eye pair found; the
    crop then is not rotated).
  angle: angle of the eye line, left eye -> right eye, in degrees, positive when the right eye is
    lower (clockwise as seen on screen, y pointing down); the crop rotates by -angle.
  matrix: float64 (2, 3) affine mapping source pixel coordinates to output (size x size) ones.
  """
  rule: str
  size: int
  face_box: tuple[int, int, int, int]
  face_detector: str
  left_eye: tuple[float, float]
  right_eye: tuple[float, float]
  eye_source: str
  angle: float
  matrix: np.ndarray

  @property
  def eye_distance(self) -> float:
    return math.dist(self.left_eye, self.right_eye)

  def transform(self, points) -> np.ndarray:
    """Output coordinates of source points (..., 2)."""
    points = np.asarray(points, np.float64)
    return points @ self.matrix[:, :2].T + self.matrix[:, 2]


@functools.cache
def _cascade(name: str) -> cv2.CascadeClassifier:
  path = cv2.data.haarcascades + name
  cascade = cv2.CascadeClassifier(path)
  if cascade.empty():
    raise RuntimeError(f"OpenCV cascade {path} could not be loaded")
  return cascade


@functools.cache
def _clahe() -> cv2.CLAHE:
  return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


def _grey(image: np.ndarray, channel: str) -> np.ndarray:
  """The single-channel image a cascade runs on (image: uint8 RGB or grey)."""
  if image.ndim == 2:
    grey = red = image
  else:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    red = np.ascontiguousarray(image[:, :, 0])
  if channel == "grey":
    return grey
  if channel == "grey_equalised":
    return cv2.equalizeHist(grey)
  if channel == "grey_clahe":
    return _clahe().apply(grey)
  if channel == "red":
    return red
  if channel == "red_equalised":
    return cv2.equalizeHist(red)
  raise ValueError(f"unknown channel {channel!r}")


def _check_image(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim not in (2, 3) or (
      image.ndim == 3 and image.shape[2] not in (1, 3)):
    raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
  if image.ndim == 3 and image.shape[2] == 1:
    image = image[:, :, 0]
  return image


def _faces(image: np.ndarray):
  """Yields (box, attempt) for every face of every attempt, in `FACE_ATTEMPTS` order and,
  within an attempt, largest first; raises FaceNotFound when no attempt finds any."""
  image = _check_image(image)
  height, width = image.shape[:2]
  smallest = max(_MIN_FACE_PX, int(min(height, width) * _MIN_FACE_FRACTION))
  if min(height, width) < smallest:
    raise FaceNotFound(f"image {width}x{height} is smaller than the smallest face searched "
                       f"({smallest} px)")
  greys: dict[str, np.ndarray] = {}
  found = False
  for attempt in FACE_ATTEMPTS:
    if attempt.channel not in greys:
      greys[attempt.channel] = _grey(image, attempt.channel)
    boxes = _cascade(attempt.cascade).detectMultiScale(
        greys[attempt.channel], scaleFactor=attempt.scale_factor,
        minNeighbors=attempt.min_neighbors, minSize=(smallest, smallest))
    # Ties broken by position so the order never depends on the detector's output order.
    for box in sorted((tuple(int(v) for v in box) for box in boxes),
                      key=lambda b: (-b[2] * b[3], b[1], b[0])):
      found = True
      yield box, attempt
  if not found:
    tried = "; ".join(a.describe() for a in FACE_ATTEMPTS)
    raise FaceNotFound(f"no frontal face found in the {width}x{height} image (expected one "
                       f"frontal face at least {smallest} px wide; tried {tried})")


def detect_face(image: np.ndarray) -> tuple[int, int, int, int]:
  """(x, y, w, h) of the largest frontal face in a uint8 RGB image: the largest box of the first
  attempt of `FACE_ATTEMPTS` that finds one. Raises FaceNotFound."""
  return next(_faces(image))[0]


def detect_eyes(image: np.ndarray, face_box) -> tuple[tuple[float, float],
                                                      tuple[float, float]] | None:
  """(left_eye_xy, right_eye_xy), the eye centres in image pixels, or None when no plausible
  pair is found in the upper half of `face_box`.

  A pair is one eye on each side of the box's centre line, both between 20 % and 50 % of the
  box height from its top, 25-70 % of the box width apart,
  tilted by less than ~14 degrees and of similar size; among those, the pair closest to where
  the eyes of a frontal face lie in a Haar box (`_EYE_ESTIMATE`) wins.
  """
  image = _check_image(image)
  x, y, w, h = (int(v) for v in face_box)
  if w <= 0 or h <= 0:
    raise ValueError(f"empty face box {face_box}")
  # The eye band: the upper 60 % of the box (eye boxes reach below the eye centres, which must
  # lie in the upper half), with a small margin at the sides; clipped to the image.
  x0, x1 = max(0, x - w // 20), min(image.shape[1], x + w + w // 20)
  y0, y1 = max(0, y), min(image.shape[0], y + int(round(0.6 * h)))
  if x1 - x0 < 4 or y1 - y0 < 4:
    return None
  scale = _EYE_FACE_WIDTH / w
  band_w, band_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
  band = cv2.resize(image[y0:y1, x0:x1], (band_w, band_h),
                    interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
  scale_x, scale_y = band_w / (x1 - x0), band_h / (y1 - y0)
  min_eye, max_eye = round(0.08 * _EYE_FACE_WIDTH), round(0.35 * _EYE_FACE_WIDTH)
  for attempt in EYE_ATTEMPTS:
    boxes = _cascade(attempt.cascade).detectMultiScale(
        _grey(band, attempt.channel), scaleFactor=attempt.scale_factor,
        minNeighbors=attempt.min_neighbors, minSize=(min_eye, min_eye),
        maxSize=(max_eye, max_eye))
    # Eye centres (box centres, mapped back to image pixels) and sizes in face-box units.
    candidates = sorted(
        ((x0 + (bx + bw / 2) / scale_x - 0.5 - x) / w, (y0 + (by + bh / 2) / scale_y - 0.5 - y) / h,
         bw / scale_x / w)
        for bx, by, bw, bh in (tuple(int(v) for v in b) for b in boxes))
    # Eyes lie at ~40 % of a frontal Haar box's height; above 20 % is forehead or hair.
    pair = _best_pair([c for c in candidates if 0.2 <= c[1] < 0.5])
    if pair is not None:
      (lx, ly, _), (rx, ry, _) = pair
      return (x + lx * w, y + ly * h), (x + rx * w, y + ry * h)
  return None


def _best_pair(candidates):
  """The most plausible (left, right) pair of eye candidates (u, v, size in box units)."""
  (exp_lu, exp_v), (exp_ru, _) = _EYE_ESTIMATE
  best, best_cost = None, math.inf
  for left in candidates:
    for right in candidates:
      du, dv = right[0] - left[0], right[1] - left[1]
      if not (left[0] < 0.5 < right[0] and 0.25 <= du <= 0.7 and abs(dv) <= 0.25 * du):
        continue
      size_ratio = max(left[2], right[2]) / min(left[2], right[2])
      if size_ratio > 2.0:
        continue
      cost = (abs(du - (exp_ru - exp_lu)) + abs((left[1] + right[1]) / 2 - exp_v)
              + 0.5 * abs(dv) / du + 0.2 * math.log(size_ratio))
      if cost < best_cost:  # candidates are sorted, so ties keep the first pair: deterministic
        best, best_cost = (left, right), cost
  return best


def _estimated_eyes(face_box) -> tuple[tuple[float, float], tuple[float, float]]:
  x, y, w, h = face_box
  (lu, lv), (ru, rv) = _EYE_ESTIMATE
  return (x + lu * w - 0.5, y + lv * h - 0.5), (x + ru * w - 0.5, y + rv * h - 0.5)


def _crop_box(rule: str, distance: float) -> tuple[float, float, float, float]:
  """(left, top, right, bottom) of the crop in the aligned frame: origin at the midpoint of the
  eyes, x along the eye line (towards the right eye), y down, in source pixels."""
  d = distance
  if rule == "face":
    side = FACE_SIDE * d
    return -side / 2, -FACE_EYE_LINE * side, side / 2, (1 - FACE_EYE_LINE) * side
  if rule == "strcn":
    return _strcn_box(d)
  raise ValueError(f"crop rule {rule!r} not in {CROP_RULES}")


def _strcn_box(d: float) -> tuple[float, float, float, float]:
  """STRCN eq. (1) box in the aligned frame (see `_crop_box`).

  The paper (Xia et al., eq. (1)) writes, for eye centres (x_l, y_l), (x_r, y_r):
      topleft = (x_l, y_l) + delta1 (0, y_l - y_r) - delta2 (x_r - x_l, 0)
      height = delta3 d,  width = delta4 d
  Read literally in the aligned frame (y_l = y_r) the delta1 term vanishes and the box would
  start ON the eye line and 0.6 d left of the left eye: it would cut off the brows (the region
  of AU1/2/4) and, being 1.8 d wide, reach only 0.2 d past the right eye (lopsided). The
  deltas only add up for the reading "delta1 d to the side, delta2 d above the left eye":
  0.4 d + d + 0.4 d = 1.8 d = delta4 (a box symmetric about the eyes), and 0.6 d above plus
  1.6 d below the eye line = 2.2 d = delta3 (brows to chin). We use that reading:
      topleft = left eye - delta1 d (along the eye line) - delta2 d (perpendicular, upwards).
  The left eye is at (-d/2, 0) from the midpoint of the eyes.
  """
  delta1, delta2, delta3, delta4 = STRCN_DELTAS
  left, top = -d / 2 - delta1 * d, -delta2 * d
  return left, top, left + delta4 * d, top + delta3 * d


def _affine(left_eye, right_eye, box, out_width: int, out_height: int) -> np.ndarray:
  """(2, 3) matrix: source pixels -> output pixels of the (left, top, right, bottom) box of the
  aligned frame resized to out_width x out_height."""
  (lx, ly), (rx, ry) = left_eye, right_eye
  cx, cy = (lx + rx) / 2, (ly + ry) / 2
  theta = math.atan2(ry - ly, rx - lx)
  cos, sin = math.cos(theta), math.sin(theta)
  rotate = np.array([[cos, sin], [-sin, cos]])  # turns the eye line onto +x
  left, top, right, bottom = box
  scale = np.diag([out_width / (right - left), out_height / (bottom - top)])
  linear = scale @ rotate
  # Box edges map to output edges (-0.5 and n - 0.5 with pixel centres at integers).
  offset = -linear @ np.array([cx, cy]) - scale @ np.array([left, top]) - 0.5
  return np.concatenate([linear, offset[:, None]], axis=1)


def align(image: np.ndarray, size: int = 128, rule: str = "face") -> Alignment:
  """The crop of `image` (uint8 RGB) to size x size under `rule`; raises FaceNotFound."""
  if rule not in CROP_RULES:
    raise ValueError(f"crop rule {rule!r} not in {CROP_RULES}")
  if size < 1:
    raise ValueError(f"size must be positive, got {size}")
  # The face box is `detect_face`'s unless the eyes are not found in it: then the boxes of the
  # following attempts are tried (a box shifted onto the hair or covering half the face has no
  # eye pair), and the first box with one is kept.
  candidates = _faces(image)
  box, attempt = first = next(candidates)
  eyes = detect_eyes(image, box)
  if eyes is None:
    for box, attempt in itertools.islice(candidates, _MAX_EXTRA_BOXES):
      eyes = detect_eyes(image, box)
      if eyes is not None:
        break
  if eyes is None:
    box, attempt = first
    eyes, eye_source = _estimated_eyes(box), "estimated from the face box"
    log.warning("no eye pair found in face box %s of a %dx%d image; eye positions estimated "
                "from the box (crop not rotated)", box, image.shape[1], image.shape[0])
  else:
    eye_source = "detected"
  left_eye, right_eye = (tuple(float(v) for v in eye) for eye in eyes)
  distance = math.dist(left_eye, right_eye)
  angle = math.degrees(math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0]))
  matrix = _affine(left_eye, right_eye, _crop_box(rule, distance), size, size)
  return Alignment(rule=rule, size=size, face_box=box, face_detector=attempt.describe(),
                   left_eye=left_eye, right_eye=right_eye, eye_source=eye_source,
                   angle=angle, matrix=matrix)


def warp(frames: np.ndarray, alignment: Alignment) -> np.ndarray:
  """uint8 (T, size, size, C) crops of uint8 (T, H, W, C) frames under one alignment.

  When the crop shrinks the face, each frame is first warped at (about) source resolution with
  bilinear interpolation and then reduced with INTER_AREA, which averages the pixels a direct
  warp would skip (no aliasing of fine texture); borders are replicated.
  """
  frames = np.asarray(frames)
  size, matrix = alignment.size, alignment.matrix
  # Output pixels per source pixel along each output axis.
  scales = np.linalg.norm(matrix[:, :2], axis=1)
  inter_w = max(size, int(math.ceil(size / scales[0] - 1e-6)))
  inter_h = max(size, int(math.ceil(size / scales[1] - 1e-6)))
  if (inter_w, inter_h) != (size, size):
    # Same box, mapped onto inter_w x inter_h: rescale the output coordinates (edges at -0.5).
    stretch = np.array([[inter_w / size], [inter_h / size]])
    half = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5]])
    matrix = (matrix + half) * stretch - half
  out = []
  for frame in frames:
    crop = cv2.warpAffine(frame, matrix, (inter_w, inter_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    if crop.shape[:2] != (size, size):
      crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    out.append(crop.reshape(size, size, *frame.shape[2:]))
  return np.stack(out)


def crop_clip(video: np.ndarray, size: int = 128, rule: str = "face",
              reference: int = 0) -> np.ndarray:
  """uint8 (T, size, size, 3) face crops of a uint8 (T, H, W, 3) RGB clip.

  The face and eyes are located on frame `reference` only, and that one transform is applied to
  every frame. Raises FaceNotFound (a `frames.ClipError`) when the reference frame has no face.
  """
  video = np.asarray(video)
  if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3 or not len(video):
    raise ValueError(f"expected a uint8 (T, H, W, 3) clip, got {video.dtype} {video.shape}")
  if not 0 <= reference < len(video):
    raise ValueError(f"reference frame {reference} outside the clip's {len(video)} frames")
  try:
    alignment = align(video[reference], size, rule)
  except FaceNotFound as e:
    raise FaceNotFound(f"reference frame {reference}: {e}") from None
  return warp(video, alignment)
