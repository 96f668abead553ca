"""Tests of `mejax.preprocess.faces` on a real photograph and on the synthetic faces.

The photograph is matplotlib's sample `grace_hopper.jpg` (600 rows x 512 columns, one frontal
face with spectacles); the regions below were read off the image by eye on a pixel grid.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from mejax.preprocess import faces
from mejax.preprocess import frames as frames_lib
from tfds_builders import dummy

# The face from cheek to cheek and from the hat's brim to the chin (x, y, w, h), and the pupils.
FACE_REGION = (165, 145, 205, 188)
LEFT_PUPIL, RIGHT_PUPIL = (220.0, 189.0), (304.0, 186.0)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
  path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
  bgr = cv2.imread(str(path))
  assert bgr is not None and bgr.shape == (600, 512, 3)
  return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _iou(a, b) -> float:
  ax, ay, aw, ah = a
  bx, by, bw, bh = b
  width = max(0, min(ax + aw, bx + bw) - max(ax, bx))
  height = max(0, min(ay + ah, by + bh) - max(ay, by))
  inter = width * height
  return inter / (aw * ah + bw * bh - inter)


def _inside(point, box) -> bool:
  x, y, w, h = box
  return x <= point[0] < x + w and y <= point[1] < y + h


def _rotated(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
  """The image rotated by `degrees` (counter-clockwise on screen) about its centre, and the
  rotation's (2, 3) matrix."""
  height, width = image.shape[:2]
  matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, 1.0)
  return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE), matrix


def test_face_found_where_it_is(photo):
  box = faces.detect_face(photo)
  assert _iou(box, FACE_REGION) > 0.5, box
  assert _inside(LEFT_PUPIL, box) and _inside(RIGHT_PUPIL, box)


def test_eyes_found_in_the_upper_half_of_the_face(photo):
  box = faces.detect_face(photo)
  eyes = faces.detect_eyes(photo, box)
  assert eyes is not None
  left, right = eyes
  x, y, w, h = box
  for eye, pupil in ((left, LEFT_PUPIL), (right, RIGHT_PUPIL)):
    assert x <= eye[0] < x + w and y <= eye[1] < y + h / 2, (eye, box)
    assert math.dist(eye, pupil) < 10, (eye, pupil)  # ~0.12 of the eye distance
  assert left[0] < right[0]


@pytest.mark.parametrize("degrees", [8.0, -8.0])
def test_rotation_is_measured_and_undone(photo, degrees):
  size = 96
  upright = faces.align(photo, size)
  image, rotation = _rotated(photo, degrees)
  turned = faces.align(image, size)
  assert turned.eye_source == "detected"
  # Counter-clockwise on screen lifts the right eye: the eye-line angle drops by `degrees`.
  assert abs((turned.angle - upright.angle) + degrees) < 2.5, (upright.angle, turned.angle)
  # The hand-marked pupils, carried through the rotation and the crop, lie on a horizontal line.
  pupils = np.array([LEFT_PUPIL, RIGHT_PUPIL]) @ rotation[:, :2].T + rotation[:, 2]
  (lx, ly), (rx, ry) = turned.transform(pupils)
  assert abs(math.degrees(math.atan2(ry - ly, rx - lx))) < 3.0
  # Eyes found again in the crop are level too, and the crop matches the upright photo's.
  crop = faces.warp(image[None], turned)[0]
  eyes = faces.detect_eyes(crop, (0, 0, size, size))
  assert eyes is not None
  (lx, ly), (rx, ry) = eyes
  assert abs(math.degrees(math.atan2(ry - ly, rx - lx))) < 3.0
  # The upright photo's transform applied to the rotated photo (no derotation) is much further
  # off: the match above comes from undoing the rotation.
  upright_crop = faces.warp(photo[None], upright)[0].astype(float)
  not_turned = faces.warp(image[None], dataclasses.replace(turned, matrix=upright.matrix))[0]
  assert np.abs(crop - upright_crop).mean() < 0.5 * np.abs(not_turned - upright_crop).mean()


@pytest.mark.parametrize("rule", faces.CROP_RULES)
def test_eyes_land_where_the_rule_puts_them(photo, rule):
  size = 100
  alignment = faces.align(photo, size, rule)
  (lx, ly), (rx, ry) = alignment.transform([alignment.left_eye, alignment.right_eye])
  if rule == "face":  # square 2.5 d box, eyes centred, eye line at 34 % from the top
    expected_lx, expected_rx = size / 2 - size / 2.5 / 2, size / 2 + size / 2.5 / 2
    expected_y = 0.34 * size
  else:  # 1.8 d x 2.2 d box starting 0.4 d left of and 0.6 d above the left eye
    expected_lx, expected_rx = 0.4 / 1.8 * size, 1.4 / 1.8 * size
    expected_y = 0.6 / 2.2 * size
  # Output pixel centres are at integers, box edges at -0.5 and size - 0.5.
  np.testing.assert_allclose([lx, rx, ly, ry],
                             np.array([expected_lx, expected_rx, expected_y, expected_y]) - 0.5,
                             atol=1e-6)


def test_clip_gets_one_transform_from_its_reference_frame(photo):
  # A camera window moving 6 px right and 4 px down per frame: the face moves the other way.
  offsets = np.array([(30 + 6 * t, 30 + 4 * t) for t in range(4)])
  video = np.stack([photo[y:y + 520, x:x + 440] for x, y in offsets])
  reference, size = 1, 128
  out = faces.crop_clip(video, size=size, reference=reference)
  assert out.shape == (4, size, size, 3) and out.dtype == np.uint8
  # The reference frame's crop is the crop computed on that frame alone.
  np.testing.assert_array_equal(out[reference], faces.crop_clip(video[reference:reference + 1],
                                                                 size=size)[0])
  # The other frames are not re-centred: their content moves by the window's motion, scaled and
  # rotated by the reference frame's transform.
  linear = faces.align(video[reference], size).matrix[:, :2]
  window = cv2.createHanningWindow((size, size), cv2.CV_64F)
  grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float64) for frame in out]
  for t in range(len(video)):
    (dx, dy), _ = cv2.phaseCorrelate(grey[reference], grey[t], window)
    expected = -linear @ (offsets[t] - offsets[reference])
    np.testing.assert_allclose([dx, dy], expected, atol=0.5)
    if t != reference:
      assert np.linalg.norm(expected) > 2.5


@pytest.mark.parametrize("rule", faces.CROP_RULES)
@pytest.mark.parametrize("size", [64, 112])
def test_both_rules_give_square_uint8_clips(photo, rule, size):
  video = np.stack([photo, photo[:, ::-1]])  # the mirrored frame gets the same transform
  out = faces.crop_clip(video, size=size, rule=rule)
  assert out.shape == (2, size, size, 3) and out.dtype == np.uint8
  assert out[0].std() > 20  # a face, not a replicated border


def test_rules_differ(photo):
  face = faces.crop_clip(photo[None], size=64, rule="face")
  strcn = faces.crop_clip(photo[None], size=64, rule="strcn")
  assert np.abs(face.astype(int) - strcn).mean() > 10


def test_same_input_same_bytes(photo):
  video = np.stack([photo, np.roll(photo, 3, axis=1)])
  first = faces.crop_clip(video, size=80, rule="strcn", reference=1)
  second = faces.crop_clip(video.copy(), size=80, rule="strcn", reference=1)
  assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("kind", ["blank", "noise", "smooth noise"])
def test_no_face_raises_face_not_found(kind):
  rng = np.random.default_rng(0)
  if kind == "blank":
    image = np.full((240, 320, 3), 128, np.uint8)
  else:
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    if kind == "smooth noise":
      image = cv2.GaussianBlur(image, (0, 0), 2.0)
  with pytest.raises(faces.FaceNotFound) as error:
    faces.detect_face(image)
  message = str(error.value)
  assert isinstance(error.value, frames_lib.ClipError)
  assert "320x240" in message and "frontal face" in message and "frontalface_alt2" in message
  with pytest.raises(faces.FaceNotFound, match="reference frame 1: no frontal face"):
    faces.crop_clip(np.stack([image, image]), size=64, reference=1)


def test_eye_estimate_when_eyes_are_hidden(photo):
  hidden = photo.copy()
  hidden[165:210, 190:340] = cv2.GaussianBlur(photo, (0, 0), 12)[165:210, 190:340]
  alignment = faces.align(hidden, 64)
  assert alignment.eye_source == "estimated from the face box"
  assert alignment.angle == 0.0
  assert math.dist(alignment.left_eye, LEFT_PUPIL) < 20
  assert math.dist(alignment.right_eye, RIGHT_PUPIL) < 20
  assert faces.warp(hidden[None], alignment).shape == (1, 64, 64, 3)


def test_synthetic_raw_faces_are_found():
  # The raw releases' dummy data: ~96 px synthetic faces on 120x160 grey canvases.
  detected_eyes = 0
  for i in range(10):
    clip = dummy.render_frames(f"sub{i:02d}/EP{i:02d}_01", "happiness", 6, size=96,
                               canvas=(120, 160))
    # The face tile is where the canvas is not its plain grey.
    ys, xs = np.nonzero((clip[0] != 90).any(axis=-1))
    tile = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    for t in (0, 1, 3):
      alignment = faces.align(clip[t], 64)
      x, y, w, h = alignment.face_box
      assert _inside((x + w / 2, y + h / 2), tile), (i, t, alignment.face_box, tile)
      assert _inside(alignment.left_eye, tile) and _inside(alignment.right_eye, tile)
      assert alignment.left_eye[0] < alignment.right_eye[0]
      detected_eyes += alignment.eye_source == "detected"
    assert faces.crop_clip(clip, size=64, reference=1).shape == (6, 64, 64, 3)
  assert detected_eyes >= 24, detected_eyes  # of 30; ~98 % measured on 318 more faces


def test_bad_arguments(photo):
  with pytest.raises(ValueError, match="crop rule"):
    faces.align(photo, 64, "square")
  with pytest.raises(ValueError, match="reference frame 2"):
    faces.crop_clip(photo[None], size=64, reference=2)
  with pytest.raises(ValueError, match="uint8"):
    faces.crop_clip(photo[None].astype(np.float32), size=64)
