"""Tests of the host-side preprocessing of the paper models: Eulerian magnification, optical flow
and strain, apex estimation, dynamic images and facial regions (numpy/OpenCV only)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from mejax.preprocess import dynamic_image as di_lib
from mejax.preprocess import faces
from mejax.preprocess import flow as flow_lib
from mejax.preprocess import magnify as magnify_lib
from mejax.preprocess import regions


# --------------------------------------------------------------------------- magnification


def _blob_clip(frames=30, size=64, amplitude=0.3, period=10, sigma=5.0, channels=1,
               dtype=np.float32):
  """A Gaussian blob whose centre oscillates horizontally by +-amplitude px (sub-pixel)."""
  y, x = np.mgrid[0:size, 0:size].astype(np.float64)
  clip = []
  for t in range(frames):
    centre = size / 2 + amplitude * math.sin(2 * math.pi * t / period)
    clip.append(60 + 140 * np.exp(-((x - centre) ** 2 + (y - size / 2) ** 2) / (2 * sigma ** 2)))
  clip = np.stack(clip)[..., None]
  if channels == 3:
    clip = np.concatenate([clip, 0.8 * clip, 0.6 * clip], axis=-1)
  return np.rint(clip).astype(np.uint8) if dtype == np.uint8 else clip.astype(dtype)


def _mean_frame_difference(clip):
  return np.abs(np.diff(clip.astype(np.float64), axis=0)).mean()


def _displacement_x(clip, sigma=5.0):
  """(T,) horizontal displacement of the blob of `_blob_clip` in each frame, to first order:
  I(t) - f ~ -dx df/dx, so dx = -<I(t) - f, df/dx> / <df/dx, df/dx> (f: the centred blob).

  (A brightness centroid would not do: the amplified Laplacian bands have zero mean, so they
  move the centroid no more than the un-amplified residual does.)"""
  size = clip.shape[1]
  y, x = np.mgrid[0:size, 0:size].astype(np.float64)
  blob = 60 + 140 * np.exp(-((x - size / 2) ** 2 + (y - size / 2) ** 2) / (2 * sigma ** 2))
  grad = np.gradient(blob, axis=1)
  change = clip[..., 0].astype(np.float64) - blob  # channel 0 is the blob itself
  return -(change * grad).sum(axis=(1, 2)) / (grad * grad).sum()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_magnify_keeps_shape_and_dtype_and_alpha_zero_is_identity(channels, dtype):
  clip = _blob_clip(channels=channels, dtype=dtype)
  out = magnify_lib.magnify(clip, alpha=8)
  assert out.shape == clip.shape and out.dtype == clip.dtype
  assert out.min() >= 0 and out.max() <= 255
  np.testing.assert_allclose(out[0].astype(np.float64), clip[0], atol=1e-9)  # filters start here
  same = magnify_lib.magnify(clip, alpha=0)
  assert same.dtype == clip.dtype
  np.testing.assert_array_equal(same, clip)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_magnify_amplifies_subpixel_motion(channels, dtype):
  clip = _blob_clip(channels=channels, dtype=dtype)
  out = magnify_lib.magnify(clip, alpha=8)
  ratio = _mean_frame_difference(out) / _mean_frame_difference(clip)
  assert ratio > 2, ratio
  # It is the motion that grows: the blob swings further (once the filter has settled).
  swing_in = np.ptp(_displacement_x(clip)[10:])
  swing_out = np.ptp(_displacement_x(out)[10:])
  assert swing_in == pytest.approx(0.6, abs=0.05)  # +-0.3 px
  assert swing_out > 2 * swing_in, (swing_in, swing_out)
  # More alpha, more motion.
  weaker = magnify_lib.magnify(clip, alpha=2)
  assert _mean_frame_difference(clip) < _mean_frame_difference(weaker) < _mean_frame_difference(out)
  np.testing.assert_array_equal(magnify_lib.magnify(clip, alpha=8), out)  # deterministic


@pytest.mark.parametrize("channels", [1, 3])
def test_magnify_static_clip_stays_static(channels):
  frame = np.full((24, 20, channels), 90, np.uint8)
  frame[6:14, 5:12] = 200
  clip = np.repeat(frame[None], 8, axis=0)
  out = magnify_lib.magnify(clip, alpha=8)
  np.testing.assert_array_equal(out, clip)
  out = magnify_lib.magnify(clip.astype(np.float64), alpha=8)
  np.testing.assert_allclose(out, clip, atol=1e-9)


def test_magnify_chrominance_attenuation():
  clip = _blob_clip(channels=3, dtype=np.float64)
  clip[..., 2] = 30.0  # a coloured blob, and nothing near 0 or 255 after magnification
  out = magnify_lib.magnify(clip, alpha=8, chrom_attenuation=0.0)
  change_yiq = (out - clip) @ magnify_lib.RGB_TO_YIQ.T
  assert np.abs(change_yiq[..., 0]).max() > 1  # luminance moves...
  np.testing.assert_allclose(change_yiq[..., 1:], 0, atol=1e-9)  # ...colour does not
  full = magnify_lib.magnify(clip, alpha=8)
  assert np.abs(((full - clip) @ magnify_lib.RGB_TO_YIQ.T)[..., 1:]).max() > 1


def test_magnify_level_amplification_follows_the_reference_formula():
  # 64 x 64: 5 bands; representative wavelengths 90.51 / 3 = 30.17 px (residual), then halved:
  # 15.08, 7.54, 3.77, 1.89 (finest). alpha_l = 2 (9 lambda / 16 - 1), capped at 8; the finest
  # band and the residual get 0.
  assert magnify_lib.max_levels(64, 64) == 5
  lam = math.hypot(64, 64) / 3
  expected = [0.0, 2 * (9 * lam / 8 / 16 - 1), 2 * (9 * lam / 4 / 16 - 1), 8.0, 0.0]
  np.testing.assert_allclose(magnify_lib.level_alphas(64, 64, 5, 8.0, 16.0), expected)
  np.testing.assert_allclose(expected[1:3], [2.2426407, 6.4852814], rtol=1e-6)
  # Without the reference's exaggeration factor: Wu et al.'s bound (1 + alpha) lambda / 16 - 1
  # (then even the 15.08 px band stays below 8).
  np.testing.assert_allclose(magnify_lib.level_alphas(64, 64, 5, 8.0, 16.0, exaggeration=1.0),
                             [0.0, 9 * lam / 8 / 16 - 1, 9 * lam / 4 / 16 - 1,
                              9 * lam / 2 / 16 - 1, 0.0])
  # A small alpha would make the bound negative below lambda_c: clamped at 0.
  assert magnify_lib.level_alphas(64, 64, 5, 0.5, 16.0).min() == 0.0
  # The reference's 'auto' height: halve while both sides are >= 5, plus the residual.
  assert magnify_lib.max_levels(64, 48) == 5
  assert magnify_lib.max_levels(5, 5) == 2
  assert magnify_lib.max_levels(4, 100) == 1


def test_magnify_rejects_bad_arguments():
  clip = _blob_clip(frames=4, size=16)
  with pytest.raises(ValueError, match="C = 1 or 3"):
    magnify_lib.magnify(np.zeros((4, 16, 16, 2), np.uint8), alpha=8)
  with pytest.raises(ValueError, match="r2 < r1"):
    magnify_lib.magnify(clip, alpha=8, r1=0.05, r2=0.4)
  with pytest.raises(ValueError, match="levels must be in 1..3"):
    magnify_lib.magnify(clip, alpha=8, levels=4)
  with pytest.raises(ValueError, match="alpha"):
    magnify_lib.magnify(clip, alpha=-1)


# --------------------------------------------------------------------------- optical flow


def _texture(size=64, seed=0):
  noise = np.random.default_rng(seed).uniform(0, 255, (size, size))
  image = cv2.GaussianBlur(noise, (0, 0), 2.0)
  return np.rint((image - image.min()) / np.ptp(image) * 255).astype(np.uint8)


def _shift(image, dx, dy):
  """image moved by (dx, dy) px: result(x, y) = image(x - dx, y - dy)."""
  matrix = np.float32([[1, 0, dx], [0, 1, dy]])
  return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("shift", [(2.0, 1.0), (-1.5, 0.5)])
def test_farneback_recovers_a_translation(shift):
  image = _texture()
  flow = flow_lib.optical_flow(image, _shift(image, *shift), method="farneback")
  assert flow.dtype == np.float32 and flow.shape == (64, 64, 2)
  median = np.median(flow.reshape(-1, 2), axis=0)
  np.testing.assert_allclose(median, shift, atol=0.3)
  # RGB and float (0..255) images give the same field as the grey uint8 one.
  rgb = np.repeat(image[..., None], 3, axis=-1)
  np.testing.assert_array_equal(
      flow_lib.optical_flow(rgb.astype(np.float32), _shift(rgb, *shift)), flow)


def test_tvl1_needs_opencv_contrib():
  image = _texture()
  moved = _shift(image, 2, 1)
  if flow_lib.tvl1_available():
    flow = flow_lib.optical_flow(image, moved, method="tvl1")
    np.testing.assert_allclose(np.median(flow.reshape(-1, 2), axis=0), (2, 1), atol=0.3)
  else:
    with pytest.raises(ImportError, match="opencv-contrib-python-headless.*farneback"):
      flow_lib.optical_flow(image, moved, method="tvl1")
  with pytest.raises(ValueError, match="unknown flow method"):
    flow_lib.optical_flow(image, moved, method="lucas-kanade")


def test_optical_strain_of_known_fields():
  y, x = np.mgrid[0:20, 0:30].astype(np.float64)
  zero = np.zeros_like(x)
  translation = np.stack([np.full_like(x, 2.0), np.full_like(x, -1.0)], axis=-1)
  np.testing.assert_allclose(flow_lib.optical_strain(translation), 0, atol=1e-12)
  k = -0.07
  stretch = flow_lib.optical_strain(np.stack([k * x, zero], axis=-1))  # u_x = k
  assert stretch.dtype == np.float32 and stretch.shape == (20, 30)
  np.testing.assert_allclose(stretch, abs(k), rtol=1e-6)
  shear = flow_lib.optical_strain(np.stack([k * y, zero], axis=-1))  # u_y = k: sqrt(k^2 / 2)
  np.testing.assert_allclose(shear, abs(k) / math.sqrt(2), rtol=1e-6)
  both = flow_lib.optical_strain(np.stack([0.03 * x, 0.04 * y], axis=-1))  # sqrt(u_x^2 + v_y^2)
  np.testing.assert_allclose(both, 0.05, rtol=1e-6)
  rotation = flow_lib.optical_strain(np.stack([-k * y, k * x], axis=-1))  # u_y + v_x = 0
  np.testing.assert_allclose(rotation, 0, atol=1e-7)
  # The measured flow of a translation has (almost) no strain.
  image = _texture()
  measured = flow_lib.optical_flow(image, _shift(image, 2, 1))
  assert np.median(flow_lib.optical_strain(measured)) < 0.01


def test_estimate_apex_finds_the_peak():
  rng = np.random.default_rng(1)
  base = rng.uniform(50, 200, (32, 32, 1))
  intensity = np.array([0, 1, 2, 4, 7, 10, 14, 11, 6, 3, 1, 0], np.float64)  # peak at 6
  y, x = np.mgrid[0:32, 0:32]
  bump = np.exp(-((x - 20) ** 2 + (y - 12) ** 2) / 20.0)[..., None]
  clip = np.stack([base + 3 * level * bump + rng.normal(0, 0.5, base.shape)
                   for level in intensity])
  assert flow_lib.estimate_apex(clip) == 6
  assert flow_lib.estimate_apex(np.rint(clip).astype(np.uint8)) == 6
  assert flow_lib.estimate_apex(np.repeat(base[None], 5, axis=0)) == 0  # static: the onset
  assert flow_lib.apex_scores(clip)[0] == 0


def test_onset_apex_flow_uses_the_estimated_apex():
  image = _texture()
  shifts = [0, 0.5, 1.0, 2.0, 1.0, 0.5]  # largest change at frame 3
  clip = np.stack([_shift(image, s, 0) for s in shifts])[..., None]
  flow = flow_lib.onset_apex_flow(clip)
  np.testing.assert_allclose(np.median(flow.reshape(-1, 2), axis=0), (2, 0), atol=0.3)
  annotated = flow_lib.onset_apex_flow(clip, apex=1)
  np.testing.assert_allclose(np.median(annotated.reshape(-1, 2), axis=0), (0.5, 0), atol=0.3)


# --------------------------------------------------------------------------- dynamic images


def test_rank_pool_weights():
  # The formula as written: T = 3 -> H = (0, 1, 3/2, 11/6);
  # alpha = (6 - 4 * 11/6, 4 - 4 * 5/6, 2 - 4 * 1/3) = (-4/3, 2/3, 2/3), as MODELS.md says.
  np.testing.assert_allclose(di_lib.rank_pool_weights(3), [-4 / 3, 2 / 3, 2 / 3], rtol=1e-12)
  assert di_lib.rank_pool_weights(1).tolist() == [0.0]
  np.testing.assert_allclose(di_lib.rank_pool_weights(2), [-0.5, 0.5])  # 4 - 3 * 3/2, 2 - 3 * 1/2
  for frames in (1, 2, 5, 12, 30, 96):
    weights = di_lib.rank_pool_weights(frames)
    assert weights.shape == (frames,)
    assert abs(weights.sum()) < 1e-9 * frames ** 2
    # Bilen et al.'s derivation: rank pooling the running means V_s with weights 2 s - T - 1.
    expansion = [sum((2 * s - frames - 1) / s for s in range(t, frames + 1))
                 for t in range(1, frames + 1)]
    np.testing.assert_allclose(weights, expansion, atol=1e-9)
  with pytest.raises(ValueError):
    di_lib.rank_pool_weights(0)


def test_dynamic_image_of_static_and_ramp_clips():
  rng = np.random.default_rng(2)
  frame = rng.uniform(0, 255, (6, 5, 3))
  static = np.repeat(frame[None], 9, axis=0)
  di = di_lib.dynamic_image(static)
  assert di.dtype == np.float32 and di.shape == (6, 5, 3)
  np.testing.assert_allclose(di, 0, atol=1e-9 * 255 * 81)
  np.testing.assert_allclose(di_lib.dynamic_image(static.astype(np.uint8)), 0, atol=1e-6)
  # I_t = I_0 + t S: DI = S (T^3 - T) / 12, whatever I_0.
  frames = 9
  slope = rng.normal(0, 2, (6, 5, 3))
  ramp = np.stack([frame + t * slope for t in range(frames)])
  np.testing.assert_allclose(di_lib.dynamic_image(ramp), slope * (frames ** 3 - frames) / 12,
                             rtol=1e-5, atol=1e-4)
  # Time order matters: the reversed clip gives the opposite image.
  np.testing.assert_allclose(di_lib.dynamic_image(ramp[::-1]), -di_lib.dynamic_image(ramp),
                             rtol=1e-5, atol=1e-4)
  with pytest.raises(ValueError):
    di_lib.dynamic_image(frame)


def test_to_uint8_rescales_each_image():
  images = np.stack([np.linspace(-3, 5, 24).reshape(2, 4, 3),
                     np.linspace(100, 101, 24).reshape(2, 4, 3),
                     np.full((2, 4, 3), 7.0)])
  out = di_lib.to_uint8(images)
  assert out.dtype == np.uint8 and out.shape == images.shape
  for image in out[:2]:
    assert image.min() == 0 and image.max() == 255
  np.testing.assert_array_equal(out[0], out[1])  # same pattern, different offset/scale
  assert (out[2] == 0).all()  # constant
  np.testing.assert_array_equal(di_lib.to_uint8(images[0]), out[0])
  assert out[0].reshape(-1)[12] == round(12 / 23 * 255)


# --------------------------------------------------------------------------- regions


def _pixel(point):
  """(column, row) of the pixel holding an (x, y) point in OpenCV coordinates."""
  return math.floor(point[0] + 0.5), math.floor(point[1] + 0.5)


def _holds(box, pixel):
  x0, y0, x1, y1 = box
  return x0 <= pixel[0] < x1 and y0 <= pixel[1] < y1


def test_eye_centres_agree_with_the_face_crop():
  """The eyes of a `face` crop land where `regions.eye_centres` says (grace_hopper.jpg)."""
  from matplotlib import cbook
  bgr = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
  alignment = faces.align(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size=128, rule="face")
  np.testing.assert_allclose(alignment.transform([alignment.left_eye, alignment.right_eye]),
                             regions.eye_centres(128), atol=1e-9)
  assert regions.eye_distance(128) == pytest.approx(128 / faces.FACE_SIDE)


@pytest.mark.parametrize("size", [24, 32, 64, 100, 128, 256])
def test_region_boxes_geometry(size):
  left, right = regions.eye_centres(size)
  eye_pixels = [_pixel(left), _pixel(right)]
  eye_line = faces.FACE_EYE_LINE * size  # in pixel-edge coordinates
  for layout in regions.LAYOUTS:
    boxes = regions.region_boxes(size, layout)
    assert tuple(boxes) == regions.REGION_ORDER[layout]
    for x0, y0, x1, y1 in boxes.values():
      assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
      assert all(isinstance(v, int) for v in (x0, y0, x1, y1))
  fusenet = regions.region_boxes(size, "fusenet")
  assert all(_holds(fusenet["eyes"], eye) for eye in eye_pixels)
  x0, y0, x1, y1 = fusenet["nose_mouth"]
  assert y0 >= eye_line and y1 > 0.75 * size  # below the eyes, down past the mouth
  assert x0 <= (size - 1) / 2 <= x1 - 1
  dynamic = regions.region_boxes(size, "dynamic_image")
  for name, box in dynamic.items():
    assert not any(_holds(box, eye) for eye in eye_pixels), name
  mask = regions.eye_mask_box(size)
  assert all(_holds(mask, eye) for eye in eye_pixels)
  # Brows above the mask, nose below it, mouth below the nose: at most one shared pixel row.
  assert dynamic["eyebrows"][3] <= mask[1] + 1
  assert dynamic["nose"][1] >= mask[3] - 1
  assert dynamic["mouth"][1] >= dynamic["nose"][3] - 1


def test_crop_regions_cuts_the_right_pixels():
  size, frames = 64, 3
  y, x = np.mgrid[0:size, 0:size].astype(np.float64)
  clip = np.stack([np.stack([x, y, x + y + t], axis=-1) for t in range(frames)])
  boxes = regions.region_boxes(size, "fusenet")
  crops = regions.crop_regions(clip, boxes, out_size=16)
  assert list(crops) == ["eyes", "nose_mouth"]
  for name, (x0, y0, x1, y1) in boxes.items():
    crop = crops[name]
    assert crop.shape == (frames, 16, 16, 3) and crop.dtype == np.float64
    # INTER_AREA averages: the mean of an x (y) ramp is the box's mean column (row).
    assert crop[..., 0].mean() == pytest.approx((x0 + x1 - 1) / 2, abs=0.05)
    assert crop[..., 1].mean() == pytest.approx((y0 + y1 - 1) / 2, abs=0.05)
    np.testing.assert_allclose(crop[2, ..., 2] - crop[0, ..., 2], 2.0, atol=1e-9)
  grey = np.zeros((2, size, size, 1), np.uint8)
  out = regions.crop_regions(grey, regions.region_boxes(size, "dynamic_image"), out_size=20)
  assert {k: v.shape for k, v in out.items()} == {
      "eyebrows": (2, 20, 20, 1), "nose": (2, 20, 20, 1), "mouth": (2, 20, 20, 1)}
  assert all(v.dtype == np.uint8 for v in out.values())
  with pytest.raises(ValueError, match="not inside"):
    regions.crop_regions(grey, {"eyes": (0, 0, size + 1, 8)}, out_size=8)


def test_stacked_regions_and_eye_mask():
  size = 64
  rng = np.random.default_rng(3)
  clip = rng.integers(1, 256, (4, size, size, 1)).astype(np.uint8)
  stacked = regions.face_regions(clip, "fusenet", out_size=32)
  assert stacked.shape == (4, 32, 32, 2) and stacked.dtype == np.uint8
  crops = regions.crop_regions(clip, regions.region_boxes(size, "fusenet"), 32)
  np.testing.assert_array_equal(stacked[..., 0:1], crops["eyes"])
  np.testing.assert_array_equal(stacked[..., 1:2], crops["nose_mouth"])
  masked = regions.mask_eyes(clip)
  x0, y0, x1, y1 = regions.eye_mask_box(size)
  assert (masked[:, y0:y1, x0:x1] == 0).all()
  outside = np.ones(clip.shape, bool)
  outside[:, y0:y1, x0:x1] = False
  np.testing.assert_array_equal(masked[outside], clip[outside])
  rgb_di = rng.normal(0, 1, (1, size, size, 3)).astype(np.float32)
  stacked = regions.face_regions(rgb_di, "dynamic_image", out_size=24)
  assert stacked.shape == (1, 24, 24, 9) and stacked.dtype == np.float32
  with pytest.raises(ValueError, match="lack"):
    regions.stack_regions({"eyes": crops["eyes"]}, "fusenet")
  with pytest.raises(ValueError, match="layout"):
    regions.region_boxes(size, "whole_face")
