"""Eulerian video magnification (Wu et al. 2012), as STRCN (Xia et al.) and Le et al. use it.

This is the "Laplacian pyramid + IIR temporal filter" variant of Wu et al.'s reference code
(`amplify_spatial_lpyr_temporal_iir.m`), which both papers run (Xia et al. §III-B, §IV-A:
one IIR band-pass, cut-offs [0.05, 0.4], alpha = 8, lambda = 16):

  1. every frame is decomposed into a Laplacian pyramid (5-tap binomial filter = OpenCV's
     pyrDown/pyrUp kernel, reflect-101 borders; level 0 is the finest band, the last level the
     low-pass residual);
  2. every pyramid coefficient is filtered in time by the difference of two first-order
     low-pass filters, both started at frame 0's pyramid:
         low1 <- (1 - r1) low1 + r1 P(t),  low2 <- (1 - r2) low2 + r2 P(t),  B(t) = low1 - low2
     (r1 > r2 are per-frame coefficients, not Hz: the reference and the papers' "[0.05, 0.4] Hz"
     are the same numbers);
  3. band l is amplified by alpha_l, the reference's bound on alpha for its representative
     spatial wavelength lambda_l (the coarsest band has lambda = sqrt(H^2 + W^2) / 3 px, each finer
     band half of the one below it):
         delta = lambda_c / 8 / (1 + alpha)
         alpha_l = exaggeration * (lambda_l / delta / 8 - 1)
                 = exaggeration * ((1 + alpha) lambda_l / lambda_c - 1)
         alpha_l = alpha where alpha_l > alpha
     With exaggeration 1 this is Wu et al.'s bound (1 + alpha) delta(t) < lambda / 8 and Xia et
     al.'s alpha = min(8, alpha_c): bands of wavelength above lambda_c get the full alpha, finer
     ones a linearly reduced one. The reference's exaggeration 2 moves the threshold down to
     lambda_c (1 + alpha / 2) / (1 + alpha) (8.9 px for alpha = 8, lambda_c = 16).
     The finest band and the low-pass residual are not amplified (the reference zeroes them);
  4. the amplified bands are collapsed and added to the frame; the result is clipped to 0..255.

RGB clips are processed in the reference's colour space, NTSC YIQ, with the chrominance (I, Q)
part of the magnification multiplied by `chrom_attenuation`; grey clips directly.

Choices where the reference or the papers are loose:
- `exaggeration` = 2 is the reference code's `exaggeration_factor` ("to boost alpha above the
  bound ... for better visualization"); `exaggeration=1` gives the bound of Wu et al.'s paper and
  Xia et al.'s formula exactly.
- The reference applies alpha_l even when it is negative ((1 + alpha) lambda_l < lambda_c, which
  takes a small alpha: alpha = 0 gives alpha_l = 2 (lambda_l / lambda_c - 1) < 0 on every band
  finer than lambda_c), inverting that band's motion; we clamp alpha_l at 0, so that alpha = 0
  returns the input unchanged.
- r1 = 0.4, r2 = 0.05 are the values of the reference's own examples and Xia et al.'s; the
  reference's examples attenuate chrominance (0.1), the papers do not say: default 1.0.
- The reference converts its output to RGB with MATLAB's ntsc2rgb, which rescales out-of-range
  pixels; we clip each channel to 0..255.
- The computation is in float64, frame by frame (the filter is causal), so memory stays at a few
  pyramids whatever the clip length.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# NTSC (YIQ) from RGB, MATLAB's rgb2ntsc; the inverse is computed, not rounded (ntsc2rgb).
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.596, -0.274, -0.322],
                       [0.211, -0.523, 0.312]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)

# The pyramid filter's length (binomial 1-4-6-4-1): a level exists while both sides are >= it.
_PYRAMID_FILTER_TAPS = 5


def max_levels(height: int, width: int) -> int:
  """The reference's 'auto' pyramid height for a height x width frame: bands including the
  low-pass residual (matlabPyrTools `1 + maxPyrHt(size, 5)`)."""
  levels = 1
  while height >= _PYRAMID_FILTER_TAPS and width >= _PYRAMID_FILTER_TAPS:
    levels += 1
    height, width = height // 2, width // 2
  return levels


def level_alphas(height: int, width: int, levels: int, alpha: float,
                 cutoff_wavelength: float = 16.0, exaggeration: float = 2.0) -> np.ndarray:
  """float64 (levels,) amplification of each band, finest (index 0) to residual (last).

  See the module docstring, step 3. `cutoff_wavelength` is lambda_c in pixels of the frame.
  """
  if alpha < 0:
    raise ValueError(f"alpha must be >= 0, got {alpha}")
  if cutoff_wavelength <= 0:
    raise ValueError(f"cutoff_wavelength must be positive, got {cutoff_wavelength}")
  delta = cutoff_wavelength / 8 / (1 + alpha)
  wavelength = math.hypot(height, width) / 3  # the residual's; halves towards the finer bands
  alphas = np.zeros(levels)
  for level in range(levels - 1, -1, -1):
    if 0 < level < levels - 1:  # the finest band and the residual stay at 0
      bound = exaggeration * (wavelength / delta / 8 - 1)
      alphas[level] = alpha if bound > alpha else max(bound, 0.0)
    wavelength /= 2
  return alphas


def _as_hwc(image: np.ndarray, channels: int) -> np.ndarray:
  """OpenCV drops a single channel axis; put it back."""
  return image.reshape(image.shape[0], image.shape[1], channels)


def _pyramid(frame: np.ndarray, levels: int) -> list[np.ndarray]:
  """Laplacian pyramid of a float64 (H, W, C) frame: `levels` arrays, finest first, the last one
  the low-pass residual."""
  channels = frame.shape[2]
  bands, current = [], frame
  for _ in range(levels - 1):
    smaller = _as_hwc(cv2.pyrDown(current), channels)
    expanded = _as_hwc(cv2.pyrUp(smaller, dstsize=(current.shape[1], current.shape[0])), channels)
    bands.append(current - expanded)
    current = smaller
  bands.append(current)
  return bands


def _collapse(bands: list[np.ndarray]) -> np.ndarray:
  channels = bands[0].shape[2]
  image = bands[-1]
  for band in reversed(bands[:-1]):
    image = band + _as_hwc(cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0])), channels)
  return image


def magnify(clip: np.ndarray, alpha: float, cutoff_wavelength: float = 16.0, r1: float = 0.4,
            r2: float = 0.05, levels: int | None = None, chrom_attenuation: float = 1.0,
            exaggeration: float = 2.0) -> np.ndarray:
  """Motion-magnified copy of a (T, H, W, C) clip, C = 1 (grey) or 3 (RGB).

  clip: uint8, or float with values on the same 0..255 scale. Returns the same shape and dtype,
    clipped to 0..255 (uint8 output rounded to nearest). Frame 0 is returned unchanged (the
    filters start at it).
  alpha: magnification (Xia et al.: 8 at test time, 5..14 for augmentation); 0 returns the input.
  cutoff_wavelength: lambda_c in pixels; bands of shorter representative wavelength get less.
  r1, r2: the two low-pass coefficients, 0 < r2 < r1 <= 1 (pass band between them).
  levels: pyramid bands including the residual; None = the reference's 'auto' (`max_levels`).
  chrom_attenuation: factor on the I and Q part of the magnification (RGB only).
  exaggeration: the reference's exaggeration_factor (module docstring).
  """
  clip = np.asarray(clip)
  if clip.ndim != 4 or clip.shape[-1] not in (1, 3) or not all(clip.shape):
    raise ValueError(f"expected a (T, H, W, C) clip with C = 1 or 3, got shape {clip.shape}")
  if clip.dtype != np.uint8 and not np.issubdtype(clip.dtype, np.floating):
    raise ValueError(f"expected a uint8 or float clip, got {clip.dtype}")
  if not 0 < r2 < r1 <= 1:
    raise ValueError(f"need 0 < r2 < r1 <= 1 (r1 is the upper cut-off), got r1={r1}, r2={r2}")
  _, height, width, channels = clip.shape
  most = max_levels(height, width)
  levels = most if levels is None else levels
  if not 1 <= levels <= most:
    raise ValueError(f"levels must be in 1..{most} for {height}x{width} frames, got {levels}")
  alphas = level_alphas(height, width, levels, alpha, cutoff_wavelength, exaggeration)
  if not alphas.any():  # alpha = 0 or too few bands: nothing is amplified
    return clip.copy()

  colour = channels == 3
  out = np.empty_like(clip)
  low1 = low2 = None
  for t, frame in enumerate(clip):
    frame = frame.astype(np.float64)
    if colour:
      frame = frame @ RGB_TO_YIQ.T
    pyramid = _pyramid(frame, levels)
    if t == 0:
      low1, low2 = pyramid, [band.copy() for band in pyramid]
      magnified = frame
    else:
      low1 = [(1 - r1) * lo + r1 * band for lo, band in zip(low1, pyramid)]
      low2 = [(1 - r2) * lo + r2 * band for lo, band in zip(low2, pyramid)]
      amplified = [a * (lo1 - lo2) for a, lo1, lo2 in zip(alphas, low1, low2)]
      motion = _collapse(amplified)
      if colour:
        motion[..., 1:] *= chrom_attenuation
      magnified = frame + motion
    if colour:
      magnified = magnified @ YIQ_TO_RGB.T
    magnified = np.clip(magnified, 0.0, 255.0)
    out[t] = np.rint(magnified) if clip.dtype == np.uint8 else magnified
  return out
