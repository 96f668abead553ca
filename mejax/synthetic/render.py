"""Public renderer: identity + expression + nuisance -> uint8 video.

Used by the `synthetic_me` builder (through `generate.py`) and by the fake raw-layout writers of
the real datasets' builders, which render a few clips and save them under the real folder and
file names. Typical use:

  rng = np.random.default_rng(seed)
  identity = sample_identity(rng)
  expression = Expression(aus=(6, 12), onset=3, apex=12, offset=25, amplitude_px=1.5)
  clip = render_clip(identity, expression, n_frames=30, fps=60.0, size=128, rng=rng)
  clip.frames     # uint8 (30, 128, 128, 3)
  clip.landmarks  # float32 (30, len(LANDMARK_NAMES), 2), (x, y) pixels of the rendered frames

`expression=None` renders a neutral clip (only nuisance), e.g. the non-expression part of a long
recording. Spatial magnitudes (`amplitude_px`, nuisance pixels) are given at the 128-px reference
size and scale with `size`, so a clip looks the same at every size. The same rng state gives
byte-identical frames; `frame_indices` renders only some frames, identical to the same frames of
the full clip (per-frame noise is seeded by frame index), which makes apex-only analyses cheap.

Pipeline per frame: blend the neutral face with its closed-eye version (blinks); warp it by the
inverse of (AU motion followed by head pose) with one bilinear `cv2.remap`, so sub-pixel motion
survives; apply illumination gain and gradient in camera coordinates; apply the `Camera`
(exposure, white balance, contrast, blur; the default does nothing); add sensor noise; round.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import cv2
import numpy as np

from mejax.synthetic import faces
from mejax.synthetic import motion
from mejax.synthetic.faces import LANDMARK_NAMES, Identity, render_face, sample_identity
from mejax.synthetic.motion import Nuisance, au_motion_field, expression_profile

__all__ = ["Camera", "Expression", "Identity", "LANDMARK_NAMES", "Nuisance", "RenderedClip",
           "au_motion_field", "expression_profile", "render_clip", "render_face",
           "sample_identity"]

_INVERSE_ITERATIONS = 4  # fixed-point refinements of the inverse warp


@dataclasses.dataclass(frozen=True)
class Expression:
  """One facial expression inside a clip.

  aus: action units, e.g. (6, 12); see `motion.AU_BLOBS`.
  onset, apex, offset: frame indices into the rendered clip (onset <= apex <= offset).
  amplitude_px: largest tissue displacement at apex, in pixels of a 128-px frame.
  intensities: optional relative weight of each AU before normalisation.
  release: False holds the apex until offset (posed onset->peak clips such as CK+).
  """
  aus: tuple[int, ...]
  onset: int
  apex: int
  offset: int
  amplitude_px: float
  intensities: tuple[float, ...] | None = None
  release: bool = True

  @property
  def au_string(self) -> str:
    return "+".join(str(a) for a in self.aus)


@dataclasses.dataclass(frozen=True)
class Camera:
  """How a recording setup renders the same scene: the domain of one corpus.

  Applied to every frame after the illumination and before the sensor noise (whose level is
  `Nuisance.noise_std`). The default is the identity: frames are then exactly those rendered
  before cameras existed.
  gain: overall exposure (multiplies intensities).
  contrast: spread of intensities about mid grey (1 keeps it).
  colour_cast: per-channel (R, G, B) gains of the white balance; ignored by grey cameras.
  grey_weights: (R, G, B) weights of a grey camera's response; None is the usual luma. A
    near-infrared camera sees skin mostly through its red-like response.
  blur_px: Gaussian blur sigma of optics / resolution, in pixels of a 128-px frame.
  """
  gain: float = 1.0
  contrast: float = 1.0
  colour_cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
  grey_weights: tuple[float, float, float] | None = None
  blur_px: float = 0.0

  def __post_init__(self):
    if self.gain <= 0 or self.contrast <= 0 or min(self.colour_cast) <= 0 or self.blur_px < 0:
      raise ValueError(f"Camera needs gain, contrast and colour_cast > 0 and blur_px >= 0, got "
                       f"{self}")
    if self.grey_weights is not None and (min(self.grey_weights) < 0
                                          or not np.isclose(sum(self.grey_weights), 1.0)):
      raise ValueError(f"Camera.grey_weights must be >= 0 and sum to 1, got {self.grey_weights}")

  @property
  def is_identity(self) -> bool:
    return self == Camera()


class RenderedClip(NamedTuple):
  frames: np.ndarray     # uint8 (T, H, W, C), C = 3 (RGB) or 1 (grey)
  landmarks: np.ndarray  # float32 (T, K, 2): (x, y) in frame pixels, order LANDMARK_NAMES


def render_clip(identity: Identity, expression: Expression | None, n_frames: int, fps: float, *,
                size: int = faces.REFERENCE_SIZE, grey: bool = False,
                nuisance: Nuisance = Nuisance(),
                rng: np.random.Generator | int = 0,
                frame_indices: Sequence[int] | None = None,
                camera: Camera = Camera()) -> RenderedClip:
  """Renders `n_frames` frames of `identity` performing `expression` at `fps`."""
  if isinstance(rng, (int, np.integer)):
    rng = np.random.default_rng(int(rng))
  track = motion.sample_nuisance_track(nuisance, n_frames, fps, rng)
  indices = np.arange(n_frames) if frame_indices is None else np.asarray(frame_indices, int)
  if indices.size and (indices.min() < 0 or indices.max() >= n_frames):
    raise ValueError(f"frame_indices outside [0, {n_frames})")
  scale = size / faces.REFERENCE_SIZE

  ref_marks = np.stack(list(identity.landmarks().values()))
  if expression is None:
    profile, apex_inverse, motion_at_marks = np.zeros(n_frames), None, None
  else:
    # Expression intensity per frame in pixels of this size.
    profile = expression_profile(n_frames, expression.onset, expression.apex, expression.offset,
                                 expression.release) * expression.amplitude_px * scale
    field = au_motion_field(identity, expression.aus, size, expression.intensities)
    apex_inverse = _inverse_motion(field, profile.max()) if profile.max() > 0 else None
    motion_at_marks = motion.au_motion_at(identity, expression.aus, ref_marks,
                                          expression.intensities)

  open_face = _channels(render_face(identity, size), grey, camera)
  closed_face = _channels(render_face(identity, size, eyes_closed=True), grey, camera) \
      if track.blink.max() > 0 else open_face
  centre = np.asarray(identity.centre) * scale
  pixels = np.stack(np.meshgrid(np.arange(size, dtype=np.float32),
                                np.arange(size, dtype=np.float32)), -1)
  relative = (pixels - centre.astype(np.float32)) / size  # for the illumination gradient

  frames = np.empty((len(indices), size, size, open_face.shape[-1]), np.uint8)
  landmarks = np.empty((len(indices), len(LANDMARK_NAMES), 2), np.float32)
  for i, t in enumerate(indices):
    pose = _head_pose(track, t, centre, scale)
    # Output pixel -> neutral-face coordinates: undo the head pose, then the AU motion.
    source = cv2.transform(pixels, _invert_affine(pose).astype(np.float32))
    if profile[t] != 0.0:
      # The inverse motion scales with intensity up to O(|grad m|^2) terms (exact at apex).
      inverse = _sample(apex_inverse, source)
      source -= np.float32(profile[t] / profile.max()) * inverse
    base = open_face
    if track.blink[t] > 0:
      base = open_face + np.float32(track.blink[t]) * (closed_face - open_face)
    image = cv2.remap(base, source, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    image = image.reshape(size, size, -1)
    gx, gy = track.gradient[t]
    illumination = np.float32(track.gain[t]) * (
        1.0 + np.float32(gx) * relative[..., 0] + np.float32(gy) * relative[..., 1])
    image *= illumination[..., None]
    if not camera.is_identity:
      image = _camera_response(image, camera, size, grey)
    noise_rng = np.random.default_rng([track.noise_seed, int(t)])
    image += np.float32(track.noise_std) * noise_rng.standard_normal(image.shape, np.float32)
    frames[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    marks = ref_marks * scale
    if motion_at_marks is not None:
      marks = marks + profile[t] * motion_at_marks
    landmarks[i] = _apply_affine(pose, marks)
  return RenderedClip(frames, landmarks)


def _channels(face: np.ndarray, grey: bool, camera: Camera = Camera()) -> np.ndarray:
  if grey and camera.grey_weights is not None:
    return (face @ np.asarray(camera.grey_weights, np.float32))[..., None]
  if grey:
    return cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)[..., None]
  return face


_MID_GREY = np.float32(128.0)


def _camera_response(image: np.ndarray, camera: Camera, size: int, grey: bool) -> np.ndarray:
  """Exposure, white balance, contrast and optical blur of `camera` on a float frame."""
  gain = np.float32(camera.gain)
  if not grey:
    image = image * (gain * np.asarray(camera.colour_cast, np.float32))
  else:
    image = image * gain
  image = _MID_GREY + np.float32(camera.contrast) * (image - _MID_GREY)
  if camera.blur_px > 0:
    sigma = camera.blur_px * size / faces.REFERENCE_SIZE
    image = cv2.GaussianBlur(image, (0, 0), sigma).reshape(image.shape)
  return image


def _head_pose(track: motion.NuisanceTrack, t: int, centre: np.ndarray, scale: float):
  """Affine (2x3) neutral-face -> image: rotation and scale about the face centre, then shift."""
  theta = np.deg2rad(track.pose_roll_deg + track.roll_deg[t])
  k = track.pose_scale
  linear = k * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
  shift = (track.pose_shift + track.drift[t]) * scale
  return np.concatenate([linear, (centre + shift - linear @ centre)[:, None]], axis=1)


def _invert_affine(affine: np.ndarray) -> np.ndarray:
  linear_inv = np.linalg.inv(affine[:, :2])
  return np.concatenate([linear_inv, (-linear_inv @ affine[:, 2])[:, None]], axis=1)


def _apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
  affine = affine.astype(points.dtype)
  return points @ affine[:, :2].T + affine[:, 2]


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Bilinear samples of `image` at float32 points (H, W, 2)."""
  return cv2.remap(image, points, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _inverse_motion(field: np.ndarray, amount: float) -> np.ndarray:
  """Displacement u(x) = amount * field(x - u(x)) on the pixel grid: the tissue now at x came
  from x - u(x). Solved by fixed-point iteration (the fields are smooth, |grad| < 1)."""
  size = field.shape[0]
  grid = np.stack(np.meshgrid(np.arange(size, dtype=np.float32),
                              np.arange(size, dtype=np.float32)), -1)
  u = np.float32(amount) * field
  for _ in range(_INVERSE_ITERATIONS):
    u = np.float32(amount) * _sample(field, grid - u)
  return u
