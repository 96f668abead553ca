"""Dense optical flow, optical strain and apex estimation (host side, OpenCV + numpy).

Used for the flow-based inputs of the paper models (MODELS.md "Shared preprocessing facts";
STRCN-G, Xia et al. §III-C: the flow between the onset and the apex frame).

- `optical_flow(a, b)`: float32 (H, W, 2) field (u, v) with a(y, x) ~ b(y + v, x + u), i.e. how
  far each pixel of `a` moved to reach `b` (x right, y down, in pixels).
  * "farneback": OpenCV's Farneback (main OpenCV); parameters `FARNEBACK_PARAMS` (OpenCV's
    tutorial values: pyramid scale 0.5, 3 levels, 15 px window, 3 iterations, poly_n 5,
    poly_sigma 1.2), overridable per call.
  * "tvl1": Dual TV-L1 (Zach et al.), the flow most MER papers use; it lives in opencv-contrib
    (`cv2.optflow.DualTVL1OpticalFlow_create`), with its default parameters. Without contrib a
    clear ImportError says which package to install.
  Images are uint8, or float on the same 0..255 scale (rounded to uint8, what both OpenCV
  methods take); RGB (H, W, 3) images are turned grey (cv2.COLOR_RGB2GRAY) first.
- `optical_strain(flow)`: |eps| = sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2), derivatives by
  central differences (`np.gradient`, one-sided at the borders), in 1/pixel units.
- `estimate_apex(clip)`: argmax_t std(I(t) - I(0)), Xia et al.'s rule for clips whose apex is not
  annotated (STRCN-G).
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_METHODS = ("farneback", "tvl1")

FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5,
                        poly_sigma=1.2, flags=0)

CONTRIB_PACKAGE = "opencv-contrib-python-headless"


def to_grey_uint8(image: np.ndarray) -> np.ndarray:
  """uint8 (H, W) of a uint8/float (H, W), (H, W, 1) or RGB (H, W, 3) image (float: 0..255)."""
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[2] in (1, 3):
    pass
  elif image.ndim != 2:
    raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got {image.shape}")
  if image.dtype != np.uint8:
    if not np.issubdtype(image.dtype, np.floating):
      raise ValueError(f"expected a uint8 or float image, got {image.dtype}")
    image = np.rint(np.clip(image, 0, 255)).astype(np.uint8)
  if image.ndim == 3:
    image = image[:, :, 0] if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
  return np.ascontiguousarray(image)


def tvl1_available() -> bool:
  return hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "farneback",
                 **params) -> np.ndarray:
  """float32 (H, W, 2) flow (u, v) from image `a` to image `b` (see the module docstring).

  `params` override `FARNEBACK_PARAMS` for "farneback"; for "tvl1" they are set on the OpenCV
  object by name, snake or camel case (lambda_=0.15 calls setLambda(0.15), inner_iterations=5
  setInnerIterations(5)).
  """
  if method not in FLOW_METHODS:
    raise ValueError(f"unknown flow method {method!r}; expected one of {FLOW_METHODS}")
  a, b = to_grey_uint8(a), to_grey_uint8(b)
  if a.shape != b.shape:
    raise ValueError(f"the two images differ in size: {a.shape} and {b.shape}")
  if method == "farneback":
    unknown = set(params) - set(FARNEBACK_PARAMS)
    if unknown:
      raise ValueError(f"unknown Farneback parameters {sorted(unknown)}; "
                       f"known: {sorted(FARNEBACK_PARAMS)}")
    flow = cv2.calcOpticalFlowFarneback(a, b, None, **{**FARNEBACK_PARAMS, **params})
  else:
    if not tvl1_available():
      raise ImportError(
          f"TV-L1 optical flow needs OpenCV's contrib modules (cv2.optflow), which this "
          f"OpenCV {cv2.__version__} lacks: install {CONTRIB_PACKAGE}=={cv2.__version__}.* (in "
          f"place of opencv-python-headless), or use method='farneback'")
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    for name, value in params.items():
      camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
      setter = getattr(tvl1, "set" + camel, None)
      if setter is None:
        raise ValueError(f"DualTVL1OpticalFlow has no parameter {name!r}")
      setter(value)
    flow = tvl1.calc(a, b, None)
  return np.asarray(flow, np.float32)


def optical_strain(flow: np.ndarray) -> np.ndarray:
  """float32 (H, W) strain magnitude of an (H, W, 2) flow (u, v); see the module docstring."""
  flow = np.asarray(flow, np.float64)
  if flow.ndim != 3 or flow.shape[2] != 2 or min(flow.shape[:2]) < 2:
    raise ValueError(f"expected an (H, W, 2) flow with H, W >= 2, got {flow.shape}")
  u, v = flow[..., 0], flow[..., 1]
  u_y, u_x = np.gradient(u)  # axis 0 is y (rows), axis 1 is x (columns)
  v_y, v_x = np.gradient(v)
  return np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)


def apex_scores(clip: np.ndarray) -> np.ndarray:
  """float64 (T,) std over pixels (and channels) of I(t) - I(0) for a (T, H, W[, C]) clip."""
  clip = np.asarray(clip)
  if clip.ndim not in (3, 4) or not len(clip):
    raise ValueError(f"expected a (T, H, W[, C]) clip, got shape {clip.shape}")
  first = clip[0].astype(np.float64)
  return np.array([np.std(frame.astype(np.float64) - first) for frame in clip])


def estimate_apex(clip: np.ndarray) -> int:
  """Index of the frame differing most from frame 0 (argmax_t std(I(t) - I(0)); first on ties).

  Frame 0 is the onset: for a clip of one frame, or a static one, the answer is 0.
  """
  return int(np.argmax(apex_scores(clip)))


def onset_apex_flow(clip: np.ndarray, apex: int = -1, method: str = "farneback",
                    **params) -> np.ndarray:
  """float32 (H, W, 2) flow from frame 0 (the onset) to the apex of a (T, H, W[, C]) clip, the
  STRCN-G input; apex < 0 (not annotated) uses `estimate_apex`."""
  clip = np.asarray(clip)
  if apex < 0:
    apex = estimate_apex(clip)
  if apex >= len(clip):
    raise ValueError(f"apex {apex} outside the clip's {len(clip)} frames")
  return optical_flow(clip[0], clip[apex], method, **params)
