"""Action-unit motion, temporal profiles and class-independent nuisance.

Each action unit (AU) is a sum of anisotropic Gaussian displacement blobs anchored on an
identity's landmarks (`AU_BLOBS`). The field of an AU combination is the sum of its AUs' blobs,
normalised so that its largest displacement is exactly 1; an expression of amplitude A pixels
therefore moves no facial point by more than A pixels at its apex. Fields describe the forward
motion of facial tissue in the neutral face's coordinates; `render.py` inverts them for warping.

Public API:
  AU_BLOBS: the AU vocabulary (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 25, 26)
  au_motion_field(identity, aus, size=128, intensities=None) -> float32 (size, size, 2), max norm 1
  au_motion_at(identity, aus, points, intensities=None) -> (K, 2) field at reference points
  expression_profile(n_frames, onset, apex, offset, release=True) -> float (n_frames,) in [0, 1]
  Nuisance: blink / head drift and roll / illumination / noise magnitudes, `.scaled(difficulty)`
  sample_nuisance_track(nuisance, n_frames, fps, rng) -> NuisanceTrack (per-frame trajectories)
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from mejax.synthetic import faces

# One blob: (anchor landmark, offset (dx, dy) from it, sigma (sx, sy), direction (vx, vy)), in
# 128-px reference units for a face of half-height 55 (scaled with the face). Paired blobs are
# written for the image-left side (`_l`, outward = -x) and mirrored to the right side.
_Blob = tuple[str, tuple[float, float], tuple[float, float], tuple[float, float]]

AU_BLOBS: dict[int, tuple[tuple[bool, _Blob], ...]] = {
    1: ((True, ("brow_inner_l", (-1.0, -1.0), (5.9, 6.5), (0.0, -1.0))),),   # inner brow raiser
    2: ((True, ("brow_outer_l", (1.5, -1.0), (7.2, 6.5), (0.0, -1.0))),),    # outer brow raiser
    4: ((True, ("brow_inner_l", (-2.5, 0.0), (7.2, 5.9), (0.5, 0.85))),),    # brow lowerer
    5: ((True, ("upper_lid_l", (0.0, -0.5), (5.9, 2.9), (0.0, -1.0))),),     # upper lid raiser
    6: ((True, ("cheek_l", (-1.0, 1.0), (8.5, 7.2), (-0.2, -1.0))),          # cheek raiser
        (True, ("lower_lid_l", (-2.0, 1.5), (6.5, 3.2), (0.0, -0.6)))),
    7: ((True, ("lower_lid_l", (0.0, 0.5), (6.5, 3.0), (0.0, -1.0))),        # lid tightener
        (True, ("upper_lid_l", (0.0, 0.0), (5.9, 2.6), (0.0, 0.4)))),
    9: ((True, ("nose_wing_l", (1.0, -6.0), (4.5, 7.2), (0.0, -1.0))),       # nose wrinkler
        (True, ("nose_wing_l", (0.0, 0.0), (4.5, 3.9), (0.0, -0.7))),
        (True, ("brow_inner_l", (0.0, 1.0), (5.2, 4.5), (0.2, 0.5)))),
    10: ((True, ("mouth_corner_l", (6.0, -2.0), (7.8, 4.5), (0.0, -1.0))),   # upper lip raiser
         (True, ("nose_wing_l", (0.0, 1.0), (4.5, 3.9), (0.0, -0.45)))),
    12: ((True, ("mouth_corner_l", (0.0, 0.0), (6.5, 5.2), (-0.6, -0.8))),   # lip corner puller
         (True, ("mouth_corner_l", (3.0, -5.0), (7.8, 7.2), (-0.3, -0.4)))),
    14: ((True, ("mouth_corner_l", (-0.5, 0.0), (4.5, 4.2), (-0.95, 0.05))),),  # dimpler
    15: ((True, ("mouth_corner_l", (0.0, 1.0), (6.5, 5.9), (-0.1, 1.0))),),   # lip corner depressor
    17: ((False, ("chin", (0.0, 0.0), (10.4, 6.5), (0.0, -1.0))),             # chin raiser
         (False, ("lower_lip", (0.0, 0.0), (9.1, 3.9), (0.0, -0.7)))),
    25: ((False, ("lower_lip", (0.0, 0.5), (10.4, 3.9), (0.0, 0.7))),         # lips part
         (False, ("upper_lip", (0.0, 0.0), (10.4, 3.2), (0.0, -0.3)))),
    26: ((False, ("chin", (0.0, -4.0), (18.2, 11.7), (0.0, 1.0))),            # jaw drop
         (False, ("lower_lip", (0.0, 0.0), (11.7, 3.9), (0.0, 0.9)))),
}
_REFERENCE_HALF_HEIGHT = 55.0


def _blobs(identity: faces.Identity, aus, intensities):
  """Concrete (centre, sigma, vector) blobs of an AU combination in reference units."""
  marks = identity.landmarks()
  face_scale = identity.half_height / _REFERENCE_HALF_HEIGHT
  weights = intensities if intensities is not None else (1.0,) * len(aus)
  out = []
  for au, weight in zip(aus, weights):
    for paired, (anchor, offset, sigma, vector) in AU_BLOBS[au]:
      sides = ((anchor, 1.0), (anchor[:-2] + "_r", -1.0)) if paired else ((anchor, 1.0),)
      for name, mirror in sides:
        centre = marks[name] + np.array([mirror * offset[0], offset[1]]) * face_scale
        out.append((centre, np.asarray(sigma) * face_scale,
                    weight * np.array([mirror * vector[0], vector[1]])))
  return out


def _evaluate(blobs, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  field = np.zeros(x.shape + (2,), np.float64)
  for centre, sigma, vector in blobs:
    g = np.exp(-0.5 * (((x - centre[0]) / sigma[0]) ** 2 + ((y - centre[1]) / sigma[1]) ** 2))
    field += g[..., None] * vector
  return field


@functools.lru_cache(maxsize=256)
def _peak_norm(identity: faces.Identity, aus: tuple[int, ...], intensities) -> float:
  # Normalisation on a fixed half-pixel reference grid so every rendering size shares the field.
  grid = np.arange(0.0, faces.REFERENCE_SIZE, 0.5)
  x, y = np.meshgrid(grid, grid)
  return float(np.linalg.norm(_evaluate(_blobs(identity, aus, intensities), x, y), axis=-1).max())


def au_motion_field(identity: faces.Identity, aus, size: int = faces.REFERENCE_SIZE,
                    intensities=None) -> np.ndarray:
  """Forward tissue motion of an AU combination, float32 (size, size, 2) as (dx, dy).

  The field is in units of the expression amplitude: its largest displacement is 1, so
  `amplitude_px * size / 128 * field` is the motion in pixels of a `size` image.
  """
  aus, intensities = _normalise_aus(aus, intensities)
  scale = size / faces.REFERENCE_SIZE
  grid = np.arange(size) / scale  # pixel centres of the size-image in reference coordinates
  x, y = np.meshgrid(grid, grid)
  field = _evaluate(_blobs(identity, aus, intensities), x, y)
  return (field / _peak_norm(identity, aus, intensities)).astype(np.float32)


def au_motion_at(identity: faces.Identity, aus, points: np.ndarray,
                 intensities=None) -> np.ndarray:
  """The normalised field at reference-frame points (K, 2), e.g. landmarks."""
  aus, intensities = _normalise_aus(aus, intensities)
  points = np.asarray(points, np.float64)
  field = _evaluate(_blobs(identity, aus, intensities), points[:, 0], points[:, 1])
  return field / _peak_norm(identity, aus, intensities)


def _normalise_aus(aus, intensities):
  aus = tuple(int(a) for a in aus)
  unknown = [a for a in aus if a not in AU_BLOBS]
  if unknown:
    raise ValueError(f"unsupported action units {unknown}; known: {sorted(AU_BLOBS)}")
  if intensities is not None:
    intensities = tuple(float(w) for w in intensities)
    if len(intensities) != len(aus):
      raise ValueError("one intensity per action unit")
  return aus, intensities


def expression_profile(n_frames: int, onset: int, apex: int, offset: int,
                       release: bool = True) -> np.ndarray:
  """Expression intensity per frame: 0 before onset, smooth rise to 1 at apex, smooth decay to 0
  at offset (or held at 1 after apex when `release` is False, as in posed onset->peak clips)."""
  if not 0 <= onset <= apex <= offset < n_frames:
    raise ValueError(f"need 0 <= onset <= apex <= offset < n_frames, got "
                     f"{onset}, {apex}, {offset}, {n_frames}")
  t = np.arange(n_frames, dtype=np.float64)
  if apex > onset:
    rise = np.clip((t - onset) / (apex - onset), 0.0, 1.0)
  else:  # onset == apex happens in real annotations: a step to the apex
    rise = (t >= apex).astype(np.float64)
  profile = 0.5 - 0.5 * np.cos(np.pi * rise)
  if release:
    fall = np.clip((t - apex) / max(offset - apex, 1e-9), 0.0, 1.0)
    profile = np.where(t > apex, 0.5 + 0.5 * np.cos(np.pi * fall), profile)
  return profile


@dataclasses.dataclass(frozen=True)
class Nuisance:
  """Magnitudes of class-independent nuisance (spatial values in 128-px reference pixels).

  Per clip the renderer draws: a static pose offset (shift, roll, scale), a smooth head drift and
  roll trajectory (peak |drift| uniform in [0.1, 1] * drift_px), illumination gain and gradient
  changes, at most one blink, and Gaussian sensor noise. `scaled(difficulty)` multiplies the
  dynamic terms (blinks, drift, roll, illumination change, noise) by `difficulty`.
  """
  blink_prob: float = 0.3
  drift_px: float = 1.5
  roll_deg: float = 0.8
  illumination: float = 0.05      # largest relative gain change over a clip
  noise_std: float = 2.0          # grey levels
  pose_shift_px: float = 2.5      # static per clip, not scaled by difficulty
  pose_roll_deg: float = 2.0
  pose_scale: float = 0.03
  brightness: float = 0.12        # static per-clip gain jitter

  def scaled(self, difficulty: float) -> Nuisance:
    d = float(difficulty)
    return dataclasses.replace(
        self, blink_prob=min(1.0, self.blink_prob * d), drift_px=self.drift_px * d,
        roll_deg=self.roll_deg * d, illumination=self.illumination * d,
        noise_std=self.noise_std * d)

  @classmethod
  def none(cls) -> Nuisance:
    """No nuisance at all: frames differ only by the expression."""
    return cls(**{f.name: 0.0 for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class NuisanceTrack:
  """Per-frame nuisance of one clip (spatial values in reference pixels)."""
  pose_shift: np.ndarray        # (2,) static
  pose_roll_deg: float
  pose_scale: float
  drift: np.ndarray             # (T, 2)
  roll_deg: np.ndarray          # (T,)
  gain: np.ndarray              # (T,) global illumination gain
  gradient: np.ndarray          # (T, 2) illumination gradient (relative change per 128 px)
  blink: np.ndarray             # (T,) eye closure in [0, 1]
  noise_std: float
  noise_seed: int               # per-frame noise comes from (noise_seed, frame index)


def sample_nuisance_track(nuisance: Nuisance, n_frames: int, fps: float,
                          rng: np.random.Generator) -> NuisanceTrack:
  """Draws one clip's nuisance. The number of draws never depends on the magnitudes, so a clip's
  random stream is the same with and without nuisance."""
  u = rng.uniform
  t = np.arange(n_frames) / fps
  pose_shift = u(-1.0, 1.0, size=2) * nuisance.pose_shift_px
  pose_roll = u(-1.0, 1.0) * nuisance.pose_roll_deg
  pose_scale = 1.0 + u(-1.0, 1.0) * nuisance.pose_scale

  drift = np.stack([_smooth_path(rng, n_frames), _smooth_path(rng, n_frames)], -1)
  drift_peak = np.linalg.norm(drift, axis=-1).max()
  drift *= nuisance.drift_px * u(0.1, 1.0) / max(drift_peak, 1e-9)
  roll = _smooth_path(rng, n_frames)
  roll *= nuisance.roll_deg * u(0.1, 1.0) / max(np.abs(roll).max(), 1e-9)

  base_gain = 1.0 + u(-1.0, 1.0) * nuisance.brightness
  ramp = _smooth_path(rng, n_frames)
  ramp /= max(np.abs(ramp).max(), 1e-9)
  gain = base_gain * (1.0 + nuisance.illumination * u(-1.0, 1.0) * ramp)
  direction = rng.standard_normal(2)
  direction /= np.linalg.norm(direction)
  gradient = (nuisance.illumination * u(0.0, 1.5) * ramp)[:, None] * direction

  blink = np.zeros(n_frames)
  blink_happens = u() < nuisance.blink_prob
  start, close_s, open_s, depth = u(-0.1, t[-1] + 1e-9), u(0.04, 0.08), u(0.08, 0.16), u(0.6, 1.0)
  if blink_happens:
    closing = np.clip((t - start) / close_s, 0.0, 1.0)
    opening = np.clip((t - start - close_s) / open_s, 0.0, 1.0)
    blink = depth * np.where(t < start + close_s, np.sin(0.5 * np.pi * closing),
                             np.cos(0.5 * np.pi * opening))
    blink = np.where(t < start, 0.0, blink)
  noise_std = nuisance.noise_std * u(0.6, 1.0)
  return NuisanceTrack(
      pose_shift=pose_shift, pose_roll_deg=float(pose_roll), pose_scale=float(pose_scale),
      drift=drift, roll_deg=roll, gain=gain, gradient=gradient, blink=blink,
      noise_std=float(noise_std), noise_seed=int(rng.integers(2**62)))


def _smooth_path(rng: np.random.Generator, n_frames: int, n_knots: int = 4) -> np.ndarray:
  """A smooth random trajectory over the clip that starts at 0 (cosine-interpolated knots)."""
  knots = np.concatenate([[0.0], rng.standard_normal(n_knots - 1)])
  if n_frames == 1:
    return np.zeros(1)
  position = np.linspace(0.0, n_knots - 1.0, n_frames)
  low = np.minimum(position.astype(int), n_knots - 2)
  frac = position - low
  weight = 0.5 - 0.5 * np.cos(np.pi * frac)
  return knots[low] + weight * (knots[low + 1] - knots[low])
