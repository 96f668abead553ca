"""Writers of the fake dataset layouts in `tfds_builders/<name>/dummy_data/`.

Each builder folder has a `make_dummy_data.py` that lays out a tiny copy of the dataset as a
licensed user receives it (folder structure, file names, image format, annotation format), with
frames drawn by the synthetic_me renderer. The files are committed; rerun the script after
changing it:

  python -m tfds_builders.casme2.make_dummy_data
"""

from __future__ import annotations

import pathlib
import shutil
import zlib
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from mejax.synthetic import faces
from mejax.synthetic import render

_AUS_OF_EMOTION = {
    "happiness": (6, 12), "positive": (12,), "surprise": (1, 2), "disgust": (9,),
    "repression": (15, 17), "anger": (4, 7), "sadness": (15,), "fear": (1, 2, 4),
    "contempt": (14,), "negative": (4,), "others": (10,), "other": (10,), "tense": (4,),
    "neutral": (),
}


def render_frames(key: str, emotion: str, n_frames: int, *, size: int = 48,
                  canvas: tuple[int, int] | None = None, grey: bool = False,
                  onset: int | None = None, apex: int | None = None,
                  offset: int | None = None) -> np.ndarray:
  """uint8 (T, H, W, 3) frames of a synthetic face performing `emotion`.

  `key` seeds the identity (same key, same face). `canvas=(height, width)` places the face
  (size px) on a larger grey background, like a raw, uncropped recording; the face's top-left
  corner moves with the key so the cropper has to find it.
  """
  seed = zlib.crc32(key.encode())
  identity = faces.sample_identity(np.random.default_rng(seed))
  onset = 1 if onset is None else onset
  offset = n_frames - 2 if offset is None else offset
  apex = (onset + offset) // 2 if apex is None else apex
  aus = _AUS_OF_EMOTION.get(emotion.lower(), (12,))
  expression = None
  if aus and n_frames >= 3:
    expression = render.Expression(aus=aus, onset=max(0, onset), apex=min(max(apex, onset), offset),
                                   offset=min(offset, n_frames - 1), amplitude_px=6.0)
  clip = render.render_clip(identity, expression, n_frames, 30.0, size=size, grey=grey,
                            rng=seed).frames
  if clip.shape[-1] == 1:
    clip = np.repeat(clip, 3, axis=-1)
  if canvas is None:
    return clip
  height, width = canvas
  out = np.full((n_frames, height, width, 3), 90, np.uint8)
  rng = np.random.default_rng(seed)
  top = int(rng.integers(0, height - size + 1))
  left = int(rng.integers(0, width - size + 1))
  out[:, top:top + size, left:left + size] = clip
  return out


def write_frames(folder: pathlib.Path, names: Sequence[str], frames: np.ndarray,
                 quality: int = 80) -> None:
  """Writes frames[i] to folder/names[i]; the format follows the name's extension."""
  folder.mkdir(parents=True, exist_ok=True)
  for name, frame in zip(names, frames, strict=True):
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    suffix = pathlib.Path(name).suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(suffix, bgr, params)
    if not ok:
      raise RuntimeError(f"cannot encode {name}")
    (folder / name).write_bytes(data.tobytes())


def write_xlsx(path: pathlib.Path, sheets: dict[str, Iterable[Sequence[Any]]]) -> None:
  """An .xlsx workbook; each sheet is a list of rows (values; strings starting with '=' are
  formulas, which openpyxl stores without cached values)."""
  import openpyxl
  book = openpyxl.Workbook()
  book.remove(book.active)
  for name, rows in sheets.items():
    sheet = book.create_sheet(name)
    for row in rows:
      sheet.append(list(row))
  path.parent.mkdir(parents=True, exist_ok=True)
  book.save(path)
  _normalise_zip_times(path)


def _normalise_zip_times(path: pathlib.Path) -> None:
  # openpyxl stamps the current time into the zip and docProps; rewrite with fixed times so a
  # regenerated dummy file only differs when its content does.
  import re
  import zipfile
  entries = []
  with zipfile.ZipFile(path) as zin:
    for info in zin.infolist():
      data = zin.read(info.filename)
      if info.filename == "docProps/core.xml":
        data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2020-01-01T00:00:00Z", data)
      entries.append((info.filename, data))
  with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
    for name, data in entries:
      info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
      info.compress_type = zipfile.ZIP_DEFLATED
      zout.writestr(info, data)


def fresh(folder: pathlib.Path) -> pathlib.Path:
  """Empties `folder` (the dummy_data of one builder) and returns it."""
  if folder.exists():
    shutil.rmtree(folder)
  folder.mkdir(parents=True)
  return folder
