"""Procedural faces: one `Identity` per subject and its neutral rendering.

Geometry is expressed in a 128-pixel reference frame (x right, y down, pixel centres at integer
coordinates) and scaled to the requested image size, so the same identity renders consistently at
64, 128 or any other size. Rendering is supersampled (`_SUPERSAMPLE`x) and reduced with area
averaging, which anti-aliases every edge.

Public API:
  sample_identity(rng, ranges=IdentityRanges()) -> Identity
  render_face(identity, size=128, eyes_closed=False) -> float32 (size, size, 3) RGB in [0, 255]
  identity.landmarks() -> dict name -> (x, y) in the 128-pixel reference frame
  LANDMARK_NAMES: the landmark order used by per-frame landmark arrays

Landmark sides are named from the viewer: `_l` is the left half of the image.
"""

from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np

REFERENCE_SIZE = 128
_SUPERSAMPLE = 4
_SHIFT_BITS = 4  # cv2 drawing with fixed-point coordinates: 1/16 pixel of the supersampled canvas

LANDMARK_NAMES = (
    "brow_inner_l", "brow_mid_l", "brow_outer_l", "brow_inner_r", "brow_mid_r", "brow_outer_r",
    "eye_l", "eye_inner_l", "eye_outer_l", "upper_lid_l", "lower_lid_l",
    "eye_r", "eye_inner_r", "eye_outer_r", "upper_lid_r", "lower_lid_r",
    "cheek_l", "cheek_r", "nose_root", "nose_tip", "nose_wing_l", "nose_wing_r",
    "mouth_corner_l", "mouth_corner_r", "upper_lip", "lower_lip", "chin",
)

# Skin tones from light to dark (RGB); an identity interpolates between two neighbours.
_SKIN_TONES = np.array([
    (246, 214, 190), (232, 190, 160), (214, 165, 130), (188, 135, 100), (150, 100, 70),
    (110, 72, 50), (82, 55, 40)], np.float32)
_HAIR_COLOURS = np.array([
    (25, 20, 18), (55, 38, 28), (95, 65, 40), (150, 110, 70), (205, 170, 110), (120, 118, 115),
    (60, 30, 20)], np.float32)
_IRIS_COLOURS = np.array([
    (70, 45, 30), (40, 28, 20), (80, 110, 150), (90, 120, 80), (120, 95, 60)], np.float32)


@dataclasses.dataclass(frozen=True)
class Identity:
  """Everything that makes one synthetic subject look like themself (128-px reference units)."""
  centre: tuple[float, float]         # centre of the head oval
  half_width: float                   # head oval semi-axes
  half_height: float
  skin: tuple[float, float, float]    # RGB
  hair: tuple[float, float, float]
  iris: tuple[float, float, float]
  lips: tuple[float, float, float]
  background: tuple[tuple[float, float, float], tuple[float, float, float]]  # top, bottom colour
  hairline_y: float
  hairline_curve: float               # how much the hairline rises towards the temples
  widows_peak: float                  # depth of a central peak of the hairline
  hair_volume: float                  # extra hair around the head oval
  brow_y: float
  brow_thickness: float
  brow_arch: float
  brow_slant: float                   # inner end lower (>0) or higher (<0) than the outer end
  brow_length: float                  # brow half-length relative to the eye width
  eye_y: float
  eye_dx: float                       # half the distance between eye centres
  eye_width: float
  eye_height: float
  nose_tip_y: float
  nose_half_width: float
  mouth_y: float
  mouth_half_width: float
  upper_lip: float                    # lip thicknesses
  lower_lip: float
  ear_size: float
  fold_strength: float                # nasolabial folds
  moles: tuple[tuple[float, float, float], ...]  # (x, y, radius)
  texture_seed: int

  @property
  def chin_y(self) -> float:
    return self.centre[1] + self.half_height

  def landmarks(self) -> dict[str, np.ndarray]:
    """Named facial landmarks in the 128-pixel reference frame."""
    cx, _ = self.centre
    marks = {}
    for side, sign in (("l", -1.0), ("r", 1.0)):
      eye_x = cx + sign * self.eye_dx
      brow_half = self.brow_length * self.eye_width
      inner_x, outer_x = eye_x - sign * brow_half * 0.85, eye_x + sign * brow_half * 1.1
      marks[f"brow_inner_{side}"] = (inner_x, self.brow_y + self.brow_slant)
      marks[f"brow_mid_{side}"] = (eye_x, self.brow_y - self.brow_arch)
      marks[f"brow_outer_{side}"] = (outer_x, self.brow_y + 0.5 * self.brow_arch)
      marks[f"eye_{side}"] = (eye_x, self.eye_y)
      marks[f"eye_inner_{side}"] = (eye_x - sign * self.eye_width / 2, self.eye_y)
      marks[f"eye_outer_{side}"] = (eye_x + sign * self.eye_width / 2, self.eye_y - 0.4)
      marks[f"upper_lid_{side}"] = (eye_x, self.eye_y - self.eye_height / 2)
      marks[f"lower_lid_{side}"] = (eye_x, self.eye_y + self.eye_height / 2)
      marks[f"cheek_{side}"] = (eye_x + sign * 0.15 * self.eye_width,
                                self.eye_y + 0.55 * (self.nose_tip_y - self.eye_y))
      marks[f"nose_wing_{side}"] = (cx + sign * self.nose_half_width, self.nose_tip_y - 1.0)
      marks[f"mouth_corner_{side}"] = (cx + sign * self.mouth_half_width, self.mouth_y)
    marks["nose_root"] = (cx, self.eye_y - 1.0)
    marks["nose_tip"] = (cx, self.nose_tip_y)
    marks["upper_lip"] = (cx, self.mouth_y - self.upper_lip)
    marks["lower_lip"] = (cx, self.mouth_y + self.lower_lip)
    marks["chin"] = (cx, self.mouth_y + 0.55 * (self.chin_y - self.mouth_y))
    return {name: np.asarray(marks[name], np.float64) for name in LANDMARK_NAMES}


@dataclasses.dataclass(frozen=True)
class IdentityRanges:
  """The ranges a population's identities are drawn from (128-px reference units).

  The defaults are those of every synthetic_me corpus; a stand-in of a licensed dataset narrows
  them to its participants (e.g. skin tones of one ethnicity) and its crop (face size), so its
  identity pool differs from the other stand-ins' like the real corpora's do.
  skin_tone: position on the light-to-dark tone scale, 0 .. len(_SKIN_TONES) - 1.
  background: grey level of the backdrop's top.
  """
  skin_tone: tuple[float, float] = (0.0, len(_SKIN_TONES) - 1.0)
  background: tuple[float, float] = (40.0, 200.0)
  half_width: tuple[float, float] = (38.0, 47.0)
  half_height: tuple[float, float] = (50.0, 59.0)

  def __post_init__(self):
    low, high = self.skin_tone
    if not 0.0 <= low <= high <= len(_SKIN_TONES) - 1.0:
      raise ValueError(f"skin_tone must lie in [0, {len(_SKIN_TONES) - 1}], got {self.skin_tone}")
    if self.half_height[1] > 60.0 or self.half_width[1] > 48.0:
      raise ValueError("half_width <= 48 and half_height <= 60 keep the face inside the frame, "
                       f"got {self.half_width}, {self.half_height}")


def sample_identity(rng: np.random.Generator,
                    ranges: IdentityRanges = IdentityRanges()) -> Identity:
  """Draws one subject's face parameters; different draws give clearly different faces.

  The number and order of draws does not depend on `ranges`, so the default ranges give the
  identities of every corpus generated before they existed.
  """
  u = rng.uniform
  cx, cy = 64.0 + u(-2.5, 2.5), 62.0 + u(-3.0, 3.0)
  half_width, half_height = u(*ranges.half_width), u(*ranges.half_height)
  chin_y = cy + half_height
  hairline_y = cy - half_height + u(0.18, 0.38) * half_height
  third = (chin_y - hairline_y) / 3.0  # classical thirds: hairline-brow, brow-nose, nose-chin
  brow_y = hairline_y + third * u(0.88, 1.08)
  nose_tip_y = brow_y + third * u(0.88, 1.08)
  eye_y = brow_y + u(6.5, 10.5)
  mouth_y = nose_tip_y + (chin_y - nose_tip_y) * u(0.27, 0.37)
  eye_dx = half_width * u(0.36, 0.45)
  eye_width = half_width * u(0.27, 0.35)

  tone = u(*ranges.skin_tone)
  low = int(tone)
  skin = _SKIN_TONES[low] + (tone - low) * (_SKIN_TONES[min(low + 1, len(_SKIN_TONES) - 1)]
                                            - _SKIN_TONES[low])
  skin = skin * u(0.95, 1.05, size=3)
  hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * u(0.85, 1.15)
  iris = _IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))] * u(0.85, 1.15)
  lips = skin * np.array([0.9, 0.62, 0.62]) * u(0.85, 1.0)
  background_top = u(*ranges.background) * np.array([1.0, 1.0, 1.0]) + u(-25.0, 25.0, size=3)
  background = (_rgb(background_top), _rgb(background_top * u(0.7, 1.1)))

  moles = tuple(
      (float(cx + u(-0.8, 0.8) * half_width), float(u(eye_y + 4, chin_y - 8)), float(u(0.6, 1.3)))
      for _ in range(rng.integers(0, 4)))
  return Identity(
      centre=(float(cx), float(cy)), half_width=float(half_width),
      half_height=float(half_height), skin=_rgb(skin), hair=_rgb(hair), iris=_rgb(iris),
      lips=_rgb(lips), background=background, hairline_y=float(hairline_y),
      hairline_curve=float(u(-2.0, 9.0)), widows_peak=float(u(0.0, 1.0) ** 2 * 6.0),
      hair_volume=float(u(1.0, 8.0)), brow_y=float(brow_y), brow_thickness=float(u(1.6, 4.2)),
      brow_arch=float(u(0.5, 3.5)), brow_slant=float(u(-1.5, 2.0)), brow_length=float(u(0.75, 1.0)),
      eye_y=float(eye_y), eye_dx=float(eye_dx), eye_width=float(eye_width),
      eye_height=float(eye_width * u(0.36, 0.5)), nose_tip_y=float(nose_tip_y),
      nose_half_width=float(half_width * u(0.15, 0.22)), mouth_y=float(mouth_y),
      mouth_half_width=float(eye_dx * u(0.68, 0.92)), upper_lip=float(u(1.6, 3.6)),
      lower_lip=float(u(2.4, 5.0)), ear_size=float(u(0.85, 1.15)),
      fold_strength=float(u(0.15, 0.45)), moles=moles,
      texture_seed=int(rng.integers(2**62)))


def _rgb(values) -> tuple[float, float, float]:
  r, g, b = (float(v) for v in np.clip(values, 0.0, 255.0))
  return (r, g, b)


@functools.lru_cache(maxsize=128)
def render_face(identity: Identity, size: int = REFERENCE_SIZE,
                eyes_closed: bool = False) -> np.ndarray:
  """Neutral face of `identity` as a read-only float32 (size, size, 3) RGB image in [0, 255]."""
  painter = _Painter(size * _SUPERSAMPLE, size / REFERENCE_SIZE * _SUPERSAMPLE)
  _paint_face(painter, identity, eyes_closed)
  face = cv2.resize(painter.canvas, (size, size), interpolation=cv2.INTER_AREA)
  face = np.clip(face, 0.0, 255.0)
  face.flags.writeable = False  # cached: callers must copy before modifying
  return face


class _Painter:
  """Soft-mask compositing on a supersampled float canvas; coordinates in reference pixels."""

  def __init__(self, canvas_size: int, scale: float):
    self.size = canvas_size
    self.scale = scale
    self.canvas = np.zeros((canvas_size, canvas_size, 3), np.float32)
    grid = (np.arange(canvas_size, dtype=np.float32) + 0.5) / scale - 0.5
    self.xs, self.ys = np.meshgrid(grid, grid)  # reference coordinates of every canvas pixel

  def points(self, xy) -> np.ndarray:
    """Reference coordinates -> fixed-point canvas coordinates for cv2 drawing."""
    xy = (np.asarray(xy, np.float64) + 0.5) * self.scale - 0.5
    return np.round(xy * (1 << _SHIFT_BITS)).astype(np.int32)

  def mask(self) -> np.ndarray:
    return np.zeros((self.size, self.size), np.uint8)

  def poly_mask(self, xy) -> np.ndarray:
    mask = self.mask()
    cv2.fillPoly(mask, [self.points(xy)], 255, cv2.LINE_AA, _SHIFT_BITS)
    return mask

  def line_mask(self, xy, thickness: float) -> np.ndarray:
    mask = self.mask()
    cv2.polylines(mask, [self.points(xy)], False, 255, max(1, round(thickness * self.scale)),
                  cv2.LINE_AA, _SHIFT_BITS)
    return mask

  def ellipse_mask(self, centre, axes, angle: float = 0.0) -> np.ndarray:
    return self.poly_mask(_ellipse_points(centre, axes, angle))

  def paint(self, mask: np.ndarray, colour, opacity: float = 1.0, blur: float = 0.0):
    """Blends `colour` (RGB or per-pixel array) into the canvas where `mask` is set."""
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
      return
    margin = int(np.ceil(3.0 * blur * self.scale)) + 1  # room for the blurred edge
    x0, y0 = max(x - margin, 0), max(y - margin, 0)
    x1, y1 = min(x + w + margin, self.size), min(y + h + margin, self.size)
    alpha = mask[y0:y1, x0:x1].astype(np.float32) * (opacity / 255.0)
    if blur > 0:
      alpha = cv2.GaussianBlur(alpha, (0, 0), blur * self.scale)
    colour = np.asarray(colour, np.float32)
    if colour.ndim == 3:
      colour = colour[y0:y1, x0:x1]
    region = self.canvas[y0:y1, x0:x1]
    region += alpha[..., None] * (colour - region)

  def multiply(self, factor: np.ndarray, mask: np.ndarray | None = None):
    """Multiplies the canvas by a per-pixel factor (shading, texture), optionally masked."""
    if mask is not None:
      factor = 1.0 + (factor - 1.0) * (mask.astype(np.float32) / 255.0)
    self.canvas *= factor[..., None]


def _ellipse_points(centre, axes, angle: float = 0.0, start: float = 0.0, stop: float = 360.0,
                    n: int = 72) -> np.ndarray:
  theta = np.deg2rad(np.linspace(start, stop, n))
  x, y = axes[0] * np.cos(theta), axes[1] * np.sin(theta)
  rot = np.deg2rad(angle)
  return np.stack([centre[0] + x * np.cos(rot) - y * np.sin(rot),
                   centre[1] + x * np.sin(rot) + y * np.cos(rot)], axis=-1)


def _quadratic(p0, p1, p2, n: int = 24) -> np.ndarray:
  """Points of the quadratic Bezier curve p0 -> p2 with control point p1."""
  t = np.linspace(0.0, 1.0, n)[:, None]
  p0, p1, p2 = (np.asarray(p, np.float64) for p in (p0, p1, p2))
  return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _paint_face(p: _Painter, idn: Identity, eyes_closed: bool):
  cx, cy = idn.centre
  a, b = idn.half_width, idn.half_height
  skin = np.asarray(idn.skin, np.float32)
  shadow = skin * 0.72
  marks = idn.landmarks()

  # Background: vertical gradient.
  top, bottom = (np.asarray(c, np.float32) for c in idn.background)
  t = np.clip(p.ys / REFERENCE_SIZE, 0.0, 1.0)[..., None]
  p.canvas[:] = top + t * (bottom - top)

  # Hair volume behind the head, neck and ears.
  hair_back = p.ellipse_mask((cx, cy - 2.0), (a + idn.hair_volume, b + 0.6 * idn.hair_volume))
  hair_back[p.ys > idn.eye_y + 6.0] = 0
  p.paint(hair_back, idn.hair)
  neck_w = a * 0.55
  p.paint(p.poly_mask([(cx - neck_w, cy + 0.4 * b), (cx + neck_w, cy + 0.4 * b),
                       (cx + neck_w * 1.1, 140.0), (cx - neck_w * 1.1, 140.0)]), shadow * 1.1)
  for sign in (-1.0, 1.0):
    ear_c = (cx + sign * (a - 1.0), idn.eye_y + 6.0)
    p.paint(p.ellipse_mask(ear_c, (4.5 * idn.ear_size, 9.0 * idn.ear_size)), skin * 0.9)
    p.paint(p.ellipse_mask(ear_c, (2.0 * idn.ear_size, 6.0 * idn.ear_size)), skin * 0.75,
            opacity=0.6, blur=0.8)

  # Head oval with soft 3-D shading (darker towards the rim and under the jaw).
  head = p.ellipse_mask((cx, cy), (a, b))
  p.paint(head, skin)
  radius2 = ((p.xs - cx) / a) ** 2 + ((p.ys - cy) / b) ** 2
  p.multiply((1.0 - 0.22 * np.clip(radius2, 0.0, 1.0) ** 2).astype(np.float32), head)
  p.paint(p.ellipse_mask((cx, idn.chin_y - 2.0), (a * 0.5, 4.0)), shadow, opacity=0.25, blur=2.5)

  # Hair above the hairline (curved, optionally with a widow's peak), clipped to the hair shape.
  xs = np.linspace(cx - a - 12, cx + a + 12, 41)
  rel = (xs - cx) / a
  hairline = (idn.hairline_y - idn.hairline_curve * rel ** 2
              + idn.widows_peak * np.exp(-(rel / 0.12) ** 2))
  hair_front = p.poly_mask(np.concatenate([np.stack([xs, hairline], -1),
                                           [(cx + a + 12, -10.0), (cx - a - 12, -10.0)]]))
  hair_shape = p.ellipse_mask((cx, cy - 2.0), (a + idn.hair_volume, b + 0.6 * idn.hair_volume))
  p.paint(np.minimum(hair_front, hair_shape), idn.hair, blur=0.4)

  # Cheeks, nasolabial folds, nose.
  for side, sign in (("l", -1.0), ("r", 1.0)):
    cheek = marks[f"cheek_{side}"]
    p.paint(p.ellipse_mask(cheek + (sign * 2.0, 4.0), (7.0, 5.0)), idn.lips, opacity=0.18, blur=3.0)
    wing, corner = marks[f"nose_wing_{side}"], marks[f"mouth_corner_{side}"]
    fold = _quadratic(wing + (sign * 1.5, 0.5), wing + (sign * 6.0, 7.0),
                      corner + (sign * 3.5, 2.0))
    p.paint(p.line_mask(fold, 1.2), shadow, opacity=idn.fold_strength, blur=0.7)
    bridge = _quadratic(marks["nose_root"] + (sign * 3.5, 0), marks["nose_root"] + (sign * 3.0, 9),
                        wing + (-sign * 1.0, -4.0))
    p.paint(p.line_mask(bridge, 1.5), shadow, opacity=0.22, blur=1.2)
    p.paint(p.ellipse_mask(wing, (2.6, 2.3)), shadow, opacity=0.35, blur=0.8)
    nostril = (idn.centre[0] + sign * idn.nose_half_width * 0.5, idn.nose_tip_y + 0.8)
    p.paint(p.ellipse_mask(nostril, (1.9, 1.0), sign * 15.0), (40, 25, 25), opacity=0.8, blur=0.4)
  tip = marks["nose_tip"]
  p.paint(p.ellipse_mask(tip + (0, -1.5), (3.5, 2.8)), skin * 1.12, opacity=0.45, blur=1.0)
  p.paint(p.ellipse_mask(tip + (0, 2.8), (idn.nose_half_width * 0.8, 1.4)), shadow, opacity=0.35,
          blur=1.0)

  # Eyes: socket shadow, sclera, iris, pupil, lids; closed eyes show the lid instead.
  for side, sign in (("l", -1.0), ("r", 1.0)):
    eye = marks[f"eye_{side}"]
    w, h = idn.eye_width / 2, idn.eye_height / 2
    p.paint(p.ellipse_mask(eye + (0, -2.5), (w * 1.25, h * 1.6)), shadow, opacity=0.3, blur=2.0)
    inner, outer = marks[f"eye_inner_{side}"], marks[f"eye_outer_{side}"]
    upper = _quadratic(inner, eye + (sign * 0.1 * w, -2.0 * h), outer)
    lower = _quadratic(outer, eye + (-sign * 0.1 * w, 1.6 * h), inner)
    almond = np.concatenate([upper, lower])
    if eyes_closed:
      p.paint(p.poly_mask(almond), skin * 0.93, blur=0.3)
      lid = _quadratic(inner, eye + (0, 1.2 * h), outer)
      p.paint(p.line_mask(lid, 0.9), (35, 25, 22), opacity=0.9, blur=0.3)
    else:
      sclera = p.poly_mask(almond)
      p.paint(sclera, (236, 232, 226))
      iris_mask = np.minimum(sclera, p.ellipse_mask(eye + (0, 0.3), (h * 1.05, h * 1.05)))
      p.paint(iris_mask, idn.iris)
      pupil = np.minimum(sclera, p.ellipse_mask(eye + (0, 0.3), (h * 0.45, h * 0.45)))
      p.paint(pupil, (12, 10, 10))
      p.paint(p.ellipse_mask(eye + (-0.6, -0.5), (0.6, 0.6)), (250, 250, 250), opacity=0.8)
      p.paint(p.line_mask(upper, 1.1), (30, 22, 20))
      p.paint(p.line_mask(lower, 0.5), shadow, opacity=0.7)
    crease = _quadratic(inner + (sign * 0.5, -1.5), eye + (0, -2.0 * h - 2.5), outer + (0, -1.5))
    p.paint(p.line_mask(crease, 0.7), shadow, opacity=0.45, blur=0.5)

  # Brows: tapered arcs.
  for side in ("l", "r"):
    inner, mid, outer = (marks[f"brow_{k}_{side}"] for k in ("inner", "mid", "outer"))
    control = 2 * mid - 0.5 * (inner + outer)  # quadratic through `mid` at t = 0.5
    centre_line = _quadratic(inner, control, outer, n=20)
    half = idn.brow_thickness / 2 * np.linspace(1.0, 0.45, 20)[:, None]
    outline = np.concatenate([centre_line + np.c_[0 * half, -half],
                              (centre_line + np.c_[0 * half, half])[::-1]])
    p.paint(p.poly_mask(outline), np.asarray(idn.hair) * 0.8, blur=0.35)

  # Mouth: lips, dark line between them, shadow under the lower lip.
  left, right = marks["mouth_corner_l"], marks["mouth_corner_r"]
  mouth_y, mw = idn.mouth_y, idn.mouth_half_width
  cupid = (cx, mouth_y - idn.upper_lip * 0.8)  # centre dip of the upper lip
  upper_outline = np.concatenate([
      _quadratic(left, (cx - 0.5 * mw, mouth_y - 2.0 * idn.upper_lip), cupid),
      _quadratic(cupid, (cx + 0.5 * mw, mouth_y - 2.0 * idn.upper_lip), right),
      _quadratic(right, (cx, mouth_y + 0.3), left)])
  lower_outline = np.concatenate([
      _quadratic(left, (cx, mouth_y + 0.3), right),
      _quadratic(right, (cx, mouth_y + 2.0 * idn.lower_lip), left)])
  p.paint(p.poly_mask(upper_outline), np.asarray(idn.lips) * 0.9, blur=0.3)
  p.paint(p.poly_mask(lower_outline), idn.lips, blur=0.3)
  p.paint(p.ellipse_mask((cx, mouth_y + idn.lower_lip * 0.6), (mw * 0.4, idn.lower_lip * 0.35)),
          np.asarray(idn.lips) * 1.2, opacity=0.4, blur=0.8)
  p.paint(p.line_mask(_quadratic(left, (cx, mouth_y + 0.6), right), 0.9), (60, 30, 30), opacity=0.9)
  p.paint(p.line_mask(_quadratic((cx - 0.5 * mw, mouth_y + idn.lower_lip + 2.5),
                                 (cx, mouth_y + idn.lower_lip + 4.0),
                                 (cx + 0.5 * mw, mouth_y + idn.lower_lip + 2.5)), 1.6),
          shadow, opacity=0.3, blur=1.0)
  philtrum = p.ellipse_mask((cx, (idn.nose_tip_y + mouth_y) / 2 - 0.5), (1.6, 3.0))
  p.paint(philtrum, shadow, opacity=0.2, blur=0.8)

  for x, y, radius in idn.moles:
    p.paint(p.ellipse_mask((x, y), (radius, radius)), skin * 0.55, opacity=0.8, blur=0.3)

  # Fixed smooth skin texture (blotches + pores), defined on the reference grid so every
  # rendering size shows the same texture; it gives flat regions (cheeks, forehead) something
  # for motion to move.
  tex_rng = np.random.default_rng(idn.texture_seed)
  shape = (REFERENCE_SIZE, REFERENCE_SIZE)
  coarse = cv2.GaussianBlur(tex_rng.standard_normal(shape).astype(np.float32), (0, 0), 6.0)
  fine = cv2.GaussianBlur(tex_rng.standard_normal(shape).astype(np.float32), (0, 0), 1.0)
  texture = 1.0 + 0.05 * coarse / (coarse.std() + 1e-6) + 0.03 * fine / (fine.std() + 1e-6)
  texture = cv2.resize(texture, (p.size, p.size), interpolation=cv2.INTER_CUBIC)
  skin_region = np.maximum(head, hair_back)
  p.multiply(texture.astype(np.float32), skin_region)
