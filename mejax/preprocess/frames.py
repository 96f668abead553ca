"""Frame files of the licensed datasets: numbered listing, checked reading, range selection.

Used by the TFDS builders. Every failure raises `ClipError` with the file or folder at fault and
what was expected; the builders turn it into a recorded skip of that sample.
"""

from __future__ import annotations

import pathlib
import re
from typing import Mapping

import cv2
import numpy as np

FRAME_RANGES = ("onset_offset", "whole")


class ClipError(Exception):
  """A clip cannot be built from its files (missing/unreadable frames, no face, bad range)."""


def numbered_frames(folder: pathlib.Path, pattern: str) -> dict[int, pathlib.Path]:
  """{frame number: file} of the files in `folder` whose whole name matches `pattern`.

  `pattern` is a regex with one group `(?P<n>\\d+)` for the frame number, e.g.
  r"reg_img(?P<n>\\d+)\\.jpg". Other files (thumbnails, `Desktop - Shortcut.lnk`) are ignored.
  """
  if not folder.is_dir():
    raise ClipError(f"clip folder {folder} does not exist")
  regex = re.compile(pattern, re.IGNORECASE)
  frames: dict[int, pathlib.Path] = {}
  for path in folder.iterdir():
    match = regex.fullmatch(path.name)
    if match is None or not path.is_file():
      continue
    number = int(match.group("n"))
    if number in frames:
      raise ClipError(f"{folder}: two files for frame {number}: {frames[number].name}, "
                      f"{path.name}")
    frames[number] = path
  if not frames:
    raise ClipError(f"{folder}: no frame files matching {pattern!r}")
  return frames


def select_range(frames: Mapping[int, pathlib.Path], onset: int, apex: int, offset: int,
                 frame_range: str, folder: pathlib.Path
                 ) -> tuple[list[int], tuple[int, int, int]]:
  """The frame numbers to store and the onset/apex/offset as indices into them.

  'onset_offset' keeps onset..offset (the whole folder when the clip has no annotated timing);
  'whole' keeps every frame of the folder. The kept numbers must be consecutive and cover the
  annotated frames. Unannotated onset/offset become the first/last stored frame; an unannotated
  apex stays -1.
  """
  if frame_range not in FRAME_RANGES:
    raise ValueError(f"Unknown frame_range {frame_range!r}; expected one of {FRAME_RANGES}")
  first, last = min(frames), max(frames)
  annotated = onset >= 0 and offset >= 0
  if annotated:
    outside = [n for n in (onset, apex, offset) if n >= 0 and not first <= n <= last]
    if outside:
      raise ClipError(f"{folder}: annotated frame(s) {outside} (onset {onset}, apex {apex}, "
                      f"offset {offset}) do not exist; the folder holds frames {first}..{last}")
  if frame_range == "onset_offset" and annotated:
    start, stop = onset, offset
  else:
    start, stop = first, last
  missing = [n for n in range(start, stop + 1) if n not in frames]
  if missing:
    shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
    raise ClipError(f"{folder}: {len(missing)} frame number(s) missing between {start} and "
                    f"{stop}: {shown}")
  numbers = list(range(start, stop + 1))
  rel_onset = onset - start if annotated else 0
  rel_offset = offset - start if annotated else len(numbers) - 1
  rel_apex = apex - start if apex >= 0 else -1
  return numbers, (rel_onset, rel_apex, rel_offset)


def read_image(path: pathlib.Path) -> np.ndarray:
  """uint8 RGB (H, W, 3) of an image file; grey images are repeated over the 3 channels.

  Raises ClipError for a file that is missing, empty, truncated (JPEG without its end marker,
  PNG without IEND, BMP shorter than its header says) or that OpenCV cannot decode.
  """
  try:
    data = path.read_bytes()
  except OSError as e:
    raise ClipError(f"{path}: cannot read ({e.strerror or e})") from None
  if not data:
    raise ClipError(f"{path}: empty file")
  problem = _truncation(data)
  if problem:
    raise ClipError(f"{path}: truncated image ({problem})")
  image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
  if image is None:
    raise ClipError(f"{path}: not a decodable image")
  if image.dtype != np.uint8:  # 16-bit PNGs
    image = (image // 257).astype(np.uint8) if image.dtype == np.uint16 else image.astype(np.uint8)
  if image.ndim == 2:
    return np.repeat(image[:, :, None], 3, axis=2)
  if image.shape[2] == 4:
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _truncation(data: bytes) -> str | None:
  if data[:2] == b"\xff\xd8":
    if b"\xff\xd9" not in data[-64:]:
      return "JPEG end-of-image marker missing"
  elif data[:8] == b"\x89PNG\r\n\x1a\n":
    if b"IEND" not in data[-16:]:
      return "PNG IEND chunk missing"
  elif data[:2] == b"BM" and len(data) >= 6:
    declared = int.from_bytes(data[2:6], "little")
    if declared and len(data) < declared:
      return f"BMP declares {declared} bytes, file has {len(data)}"
  return None


def read_frames(frames: Mapping[int, pathlib.Path], numbers: list[int]) -> np.ndarray:
  """uint8 (T, H, W, 3) of the given frame numbers; all frames must share one size."""
  images = [read_image(frames[n]) for n in numbers]
  shapes = {im.shape for im in images}
  if len(shapes) > 1:
    sizes = {n: im.shape[:2] for n, im in zip(numbers, images)}
    first = images[0].shape[:2]
    odd = [n for n, s in sizes.items() if s != first][:5]
    raise ClipError(f"{frames[numbers[0]].parent}: frames differ in size ({first} vs "
                    f"{sizes[odd[0]]} at frame(s) {odd})")
  return np.stack(images)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
  """Every frame to size x size (INTER_AREA when shrinking)."""
  if frames.shape[1:3] == (size, size):
    return frames
  interp = cv2.INTER_AREA if max(frames.shape[1:3]) > size else cv2.INTER_LINEAR
  return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def encode_png(frames: np.ndarray) -> list[bytes]:
  """PNG bytes per RGB frame with OpenCV (~10x faster than the TF encoder tfds would use)."""
  encoded = []
  for frame in frames:
    if frame.shape[-1] == 3:
      frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)  # OpenCV writes BGR; PNG stores RGB
    ok, png = cv2.imencode(".png", frame)
    if not ok:
      raise RuntimeError("PNG encoding failed")
    encoded.append(png.tobytes())
  return encoded
