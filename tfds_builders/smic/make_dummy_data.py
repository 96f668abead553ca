"""Writes `tfds_builders/smic/dummy_data/`: a tiny fake SMIC (all three releases) as distributed.

  python -m tfds_builders.smic.make_dummy_data

Layout (manual_dir = dummy_data):
  SMIC_all_cropped/<CAM>/sN/micro/<class>/<clip>/image<n:06d>.bmp   32x32 face crops
    HS: s1_ne_01, s1_po_01, s3_sur_01 (8-digit frame numbers, like the real s20), s3_po_03 (in
      negative/: its name codes another class; the folder wins, a warning is logged) and
      s3_ne_02, whose frame 303 is missing (recorded skip); s1/non_micro/s1_no_01 (not read).
    VIS, NIR: s11_po_01, s11_ne_01 (VIS named reg_image<n>.bmp: the UNVERIFIED cropped prefix).
  SMIC_all_raw/<CAM>/...same tree...   a ~96 px face in a 120x160 canvas, written as 8-bit grey
    BMPs to keep the files small (the real HS/VIS frames are colour 640x480 [UNVERIFIED])
    HS: s1_ne_01, s3_sur_01, and s3_po_01 with a truncated frame (recorded skip).
    VIS, NIR: s11_po_01.
  SMIC-E_raw image/HS_long/SMIC-HS-E_annotation.xlsx  sheets HS, VIS, Sheet2, Sheet3; the real
    header (blank columns included) with plain values: openpyxl cannot write the cached values
    of the real HS formulas (the real fixture in tests/data/annotations covers those).
    HS rows: s1_ne_01; s3_sur_01 with a second ME (Onset2F/Offset2F -> s03/s3_sur_01_2);
    s3_sur_02 with Emotion `negative` (like the real s18_sur_03); s3_ne_03 whose folder is
    missing (like the 5 folders a user reported missing; recorded skip); trailing empty rows.
    VIS row: s11_po_01 (vis_e uses it: VIS_long has no workbook of its own here).
  SMIC-E_raw image/HS_long/SMIC-HS-E/s01/s1_ne_01/image<frame:06d>.jpg ... (colour, canvas)
  SMIC-E_raw image/VIS_long/SMIC-VIS-E/s11/s11_po_01/...
  SMIC-E_raw image/NIR_long/SMIC-NIR-E_annotation.xlsx (sheet NIR), NIR_long/SMIC-NIR-E/s11/...
"""

from __future__ import annotations

import pathlib

import cv2

from tfds_builders import dummy

HERE = pathlib.Path(__file__).parent
CODE = {"negative": "ne", "positive": "po", "surprise": "sur"}
RAW_CANVAS = (120, 160)

# Non-E releases: (camera, subject, class folder, clip, first frame, frames, defect)
CROPPED = [
    ("HS", "s1", "negative", "s1_ne_01", 101, 5, None),
    ("HS", "s1", "positive", "s1_po_01", 201, 5, None),
    ("HS", "s3", "surprise", "s3_sur_01", 17581039, 5, None),
    ("HS", "s3", "negative", "s3_po_03", 401, 5, None),        # name codes another class
    ("HS", "s3", "negative", "s3_ne_02", 301, 5, "gap"),        # frame 303 missing
    ("VIS", "s11", "positive", "s11_po_01", 50, 4, None),
    ("VIS", "s11", "negative", "s11_ne_01", 90, 4, None),
    ("NIR", "s11", "positive", "s11_po_01", 50, 4, None),
    ("NIR", "s11", "negative", "s11_ne_01", 90, 4, None),
]
RAW = [
    ("HS", "s1", "negative", "s1_ne_01", 101, 3, None),
    ("HS", "s3", "surprise", "s3_sur_01", 17581039, 3, None),
    ("HS", "s3", "positive", "s3_po_01", 501, 3, "truncated"),  # one frame cut short
    ("VIS", "s11", "positive", "s11_po_01", 50, 3, None),
    ("NIR", "s11", "positive", "s11_po_01", 50, 3, None),
]
E_HEADER_HS = ["Subject", "Filename", None, "OnsetF", "OffsetF", "Onset2F", "Offset2F", None,
               "FirstF", "LastF", "TotalMF1", "TotalMF2", "TotalVL", "Emotion"]
E_HEADER_VIS = ["Subject", "Filename", None, "OnsetF", "OffsetF", "Onset2F", "Offset2F", None,
                "FirstF", "TotalMF1", "TotalMF2", "TotalVL", "Emotion"]
# SMIC-E: (camera, subject, clip, onset, offset, onset2, offset2, first, last, emotion,
#  frames written)
E_CLIPS = [
    ("HS", 1, "s1_ne_01", 203, 206, None, None, 200, 209, "negative", True),
    ("HS", 3, "s3_sur_01", 17581041, 17581043, 17581046, 17581048, 17581039, 17581049,
     "surprise", True),
    ("HS", 3, "s3_sur_02", 500, 503, None, None, 498, 505, "negative", True),
    ("HS", 3, "s3_ne_03", 700, 704, None, None, 698, 706, "negative", False),  # folder missing
    ("VIS", 11, "s11_po_01", 52, 54, None, None, 50, 55, "positive", True),
    ("NIR", 11, "s11_po_01", 52, 54, None, None, 50, 55, "positive", True),
]


def _identity(subject) -> str:
  # One synthetic face per subject (`s1` of SMIC and subject 1 of SMIC-E are the same person).
  return f"SMIC/S{int(str(subject).lstrip('s'))}"


def _write_grey(folder: pathlib.Path, names, frames) -> None:
  # 8-bit single-channel images (BMP with a palette, grey JPEG): a third of the colour size.
  folder.mkdir(parents=True, exist_ok=True)
  for name, frame in zip(names, frames, strict=True):
    ok, data = cv2.imencode(pathlib.Path(name).suffix, frame[:, :, 0])
    if not ok:
      raise RuntimeError(f"cannot encode {name}")
    (folder / name).write_bytes(data.tobytes())


def _non_e(root: pathlib.Path, clips, raw: bool) -> None:
  for camera, subject, cls, clip, first, count, defect in clips:
    folder = root / camera / subject / "micro" / cls / clip
    prefix = "reg_image" if camera == "VIS" and not raw else "image"
    names = [f"{prefix}{first + i:06d}.bmp" for i in range(count)]
    if raw:
      frames = dummy.render_frames(_identity(subject), cls, count, size=96, canvas=RAW_CANVAS,
                                   grey=True)
      _write_grey(folder, names, frames)
    else:
      frames = dummy.render_frames(_identity(subject), cls, count, size=32,
                                   grey=camera == "NIR")
      dummy.write_frames(folder, names, frames)
    if defect == "gap":
      (folder / names[2]).unlink()
    elif defect == "truncated":
      data = (folder / names[1]).read_bytes()
      (folder / names[1]).write_bytes(data[:len(data) // 2])
  if not raw:
    # Non-expression clips: present in the release, never read.
    frames = dummy.render_frames("HS/s1_no_01", "neutral", 2, size=32)
    dummy.write_frames(root / "HS" / "s1" / "non_micro" / "s1_no_01",
                       ["image000001.bmp", "image000002.bmp"], frames)


def _e(root: pathlib.Path) -> None:
  sheets = {"HS": [E_HEADER_HS], "VIS": [E_HEADER_VIS], "NIR": [E_HEADER_VIS]}
  for (camera, subject, clip, onset, offset, onset2, offset2, first, last, emotion,
       written) in E_CLIPS:
    total1 = offset - onset + 1
    total2 = offset2 - onset2 + 1 if onset2 is not None else None
    if camera == "HS":
      row = [subject, clip, None, onset, offset, onset2, offset2, None, first, last, total1,
             total2, last - first + 1, emotion]
    else:
      row = [subject, clip, None, onset, offset, onset2, offset2, None, first, total1, total2,
             last - first + 1, emotion]
    sheets[camera].append(row)
    if not written:
      continue
    count = last - first + 1
    folder = root / f"{camera}_long" / f"SMIC-{camera}-E" / f"s{subject:02d}" / clip
    names = [f"image{first + i:06d}.jpg" for i in range(count)]
    frames = dummy.render_frames(_identity(subject), emotion, count, size=96,
                                 canvas=RAW_CANVAS, grey=camera == "NIR",
                                 onset=onset - first, offset=offset - first)
    if camera == "NIR":
      _write_grey(folder, names, frames)
    else:
      dummy.write_frames(folder, names, frames)
  # The real HS sheet ends with empty rows (cells without values).
  empty = [None] * len(E_HEADER_HS)
  dummy.write_xlsx(root / "HS_long" / "SMIC-HS-E_annotation.xlsx",
                   {"HS": sheets["HS"] + [empty] * 3, "VIS": sheets["VIS"], "Sheet2": [],
                    "Sheet3": []})
  dummy.write_xlsx(root / "NIR_long" / "SMIC-NIR-E_annotation.xlsx", {"NIR": sheets["NIR"]})


def main() -> None:
  root = dummy.fresh(HERE / "dummy_data")
  _non_e(root / "SMIC_all_cropped", CROPPED, raw=False)
  _non_e(root / "SMIC_all_raw", RAW, raw=True)
  _e(root / "SMIC-E_raw image")


if __name__ == "__main__":
  main()
