"""The machinery every licensed-dataset builder shares: records, sheets, frame files, selections."""

import cv2
import numpy as np
import pytest

from mejax.data import megc2019
from mejax.annotations import records
from mejax.annotations import sheets
from mejax.data import composites
from mejax.data.clipset import ClipSet
from mejax.preprocess import frames as frames_lib


def _sample(**kw):
  base = dict(dataset="casme2", sample_id="sub01/EP01", subject="sub01", clip="sub01/EP01",
              emotion="happiness", onset=10, apex=15, offset=20, source="x.xlsx row 2")
  base.update(kw)
  return records.Sample(**base)


# ---- records -----------------------------------------------------------------------------------

def test_check_timing_skips_with_reason_and_repairs_only_when_asked():
  good = _sample()
  assert records.check_timing(good) is good
  bad = _sample(apex=25)
  skip = records.check_timing(bad)
  assert isinstance(skip, records.Skip)
  assert "apex 25 outside onset..offset 10..20" in skip.reason and skip.file == "x.xlsx row 2"
  repaired = records.check_timing(bad, repair="midpoint")
  assert repaired.apex == 15 and "midpoint 15" in repaired.repaired
  missing = records.check_timing(_sample(apex=-1))
  assert isinstance(missing, records.Skip) and "apex not annotated" in missing.reason
  assert records.check_timing(_sample(onset=-1, apex=-1, offset=-1)).onset == -1  # folder labels
  assert isinstance(records.check_timing(_sample(offset=-1)), records.Skip)
  assert records.check_timing(_sample(dataset="smic", apex=-1)).apex == -1  # SMIC has no apex
  with pytest.raises(ValueError, match="repair policy"):
    records.check_timing(good, repair="guess")


def test_validate_rejects_duplicate_ids():
  out = records.validate([_sample(), _sample(source="x.xlsx row 9"), _sample(sample_id="b", apex=1)])
  assert [s.sample_id for s in out.samples] == ["sub01/EP01"]
  reasons = {s.file: s.reason for s in out.skipped}
  assert reasons["x.xlsx row 9"] == "duplicate of x.xlsx row 2"
  assert "outside" in reasons["x.xlsx row 2"]


def test_three_class_follows_megc2019_per_dataset():
  assert records.three_class("casme2", "Repression") == "negative"
  assert records.three_class("casme2", "fear") == ""        # not in the MEGC2019 CASME II part
  assert records.three_class("samm", "Fear") == "negative"
  assert records.three_class("samm", "contempt") == "negative"
  assert records.three_class("samm", "Happiness") == "positive"
  assert records.three_class("smic", "surprise") == "surprise"
  assert records.three_class("casme2", "others") == ""


# ---- sheets --------------------------------------------------------------------------------------

def _xlsx(path, rows, title="Sheet1"):
  import openpyxl
  book = openpyxl.Workbook()
  book.active.title = title
  for row in rows:
    book.active.append(row)
  book.save(path)
  return path


def test_table_finds_columns_by_name_and_header_below_a_preamble(tmp_path):
  path = _xlsx(tmp_path / "s.xlsx", [["A title"], [None], ["Subject", None, "Onset Frame", "Emotion"],
                                     ["006", None, 12, "Anger"], [None, None, None, None],
                                     ["007", None, "=1+1", "Fear"]])
  table = sheets.read_table(path, header_contains=("subject", "onset frame"))
  assert table.column("OnsetFrame") == 2 and table.column("emotion") == 3
  assert [r for r, _ in table.rows] == [4, 6]          # blank row dropped, file row numbers kept
  assert table.rows[0][1][0] == "006"                  # text ids keep their zeros
  with pytest.raises(sheets.AnnotationError, match=r"no column 'Apex Frame'.*Subject"):
    table.column("Apex Frame")
  with pytest.raises(sheets.AnnotationError, match="s.xlsx.*no header row"):
    sheets.read_table(path, header_contains=("Filename",))
  assert sheets.integer(12.0, table, 4, "Onset Frame") == 12
  with pytest.raises(sheets.AnnotationError, match=r"s.xlsx \[Sheet1\] row 4, column 'x'.*'/'"):
    sheets.integer("/", table, 4, "x")
  assert sheets.integer("/", table, 4, "x", missing=-1) == -1


def test_sheets_read_csv_and_reject_missing_or_unknown_files(tmp_path):
  path = tmp_path / "a.csv"
  path.write_text("1,anger1_1,557,0,006\n2,happy1_2,10,12,x\n")
  table = sheets.headerless_table(path)
  assert table.rows[0][1] == [1, "anger1_1", 557, 0, "006"]
  with pytest.raises(FileNotFoundError, match="nothere.xlsx"):
    sheets.read_table(tmp_path / "nothere.xlsx")
  (tmp_path / "a.ods").write_text("x")
  with pytest.raises(sheets.AnnotationError, match="unsupported annotation format"):
    sheets.read_table(tmp_path / "a.ods")
  (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
  with pytest.raises(sheets.AnnotationError, match="broken.xlsx: expected an .xlsx workbook, but it is damaged"):
    sheets.read_table(tmp_path / "broken.xlsx")


# ---- frames --------------------------------------------------------------------------------------

def _write(folder, names, size=(12, 10), ext=".jpg"):
  folder.mkdir(parents=True, exist_ok=True)
  for i, name in enumerate(names):
    image = np.full((*size, 3), 40 + i, np.uint8)
    cv2.imwrite(str(folder / name), image)


def test_numbered_frames_and_range_selection(tmp_path):
  folder = tmp_path / "EP01"
  _write(folder, [f"reg_img{n}.jpg" for n in range(46, 53)])
  (folder / "Desktop - Shortcut.lnk").write_text("junk")
  frames = frames_lib.numbered_frames(folder, r"reg_img(?P<n>\d+)\.jpg")
  assert sorted(frames) == list(range(46, 53))
  numbers, rel = frames_lib.select_range(frames, 47, 49, 51, "onset_offset", folder)
  assert numbers == [47, 48, 49, 50, 51] and rel == (0, 2, 4)
  numbers, rel = frames_lib.select_range(frames, 47, 49, 51, "whole", folder)
  assert numbers == list(range(46, 53)) and rel == (1, 3, 5)
  numbers, rel = frames_lib.select_range(frames, -1, -1, -1, "onset_offset", folder)
  assert numbers == list(range(46, 53)) and rel == (0, -1, 6)
  with pytest.raises(frames_lib.ClipError, match=r"annotated frame\(s\) \[60\].*46..52"):
    frames_lib.select_range(frames, 47, 49, 60, "onset_offset", folder)
  (folder / "reg_img49.jpg").unlink()
  with pytest.raises(frames_lib.ClipError, match="EP01: 1 frame number.*missing between 47 and 51: 49"):
    frames_lib.select_range(frames_lib.numbered_frames(folder, r"reg_img(?P<n>\d+)\.jpg"),
                            47, 48, 51, "onset_offset", folder)
  with pytest.raises(frames_lib.ClipError, match="does not exist"):
    frames_lib.numbered_frames(tmp_path / "nope", r"img(?P<n>\d+)\.jpg")
  with pytest.raises(frames_lib.ClipError, match="no frame files matching"):
    frames_lib.numbered_frames(folder, r"img(?P<n>\d+)\.bmp")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp"])
def test_read_image_detects_truncated_files(tmp_path, ext):
  image = (np.arange(30 * 20 * 3) % 251).astype(np.uint8).reshape(30, 20, 3)
  path = tmp_path / f"f{ext}"
  cv2.imwrite(str(path), image)
  rgb = frames_lib.read_image(path)
  assert rgb.shape == (30, 20, 3)
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])
  with pytest.raises(frames_lib.ClipError, match=f"f{ext}: truncated image"):
    frames_lib.read_image(path)
  path.write_bytes(b"")
  with pytest.raises(frames_lib.ClipError, match="empty file"):
    frames_lib.read_image(path)
  path.write_bytes(b"GIF89a not an image at all")
  with pytest.raises(frames_lib.ClipError, match="not a decodable image"):
    frames_lib.read_image(path)


def test_read_image_repeats_grey_over_three_channels(tmp_path):
  grey = np.tile(np.arange(16, dtype=np.uint8)[None] * 10, (8, 1))
  cv2.imwrite(str(tmp_path / "g.png"), grey)
  rgb = frames_lib.read_image(tmp_path / "g.png")
  assert rgb.shape == (8, 16, 3) and (rgb[..., 0] == grey).all() and (rgb[..., 2] == grey).all()


def test_read_frames_rejects_mixed_sizes(tmp_path):
  _write(tmp_path, ["img1.jpg", "img2.jpg"])
  cv2.imwrite(str(tmp_path / "img3.jpg"), np.zeros((20, 20, 3), np.uint8))
  frames = frames_lib.numbered_frames(tmp_path, r"img(?P<n>\d+)\.jpg")
  assert frames_lib.read_frames(frames, [1, 2]).shape == (2, 12, 10, 3)
  with pytest.raises(frames_lib.ClipError, match=r"frames differ in size.*frame\(s\) \[3\]"):
    frames_lib.read_frames(frames, [1, 2, 3])


# ---- MEGC2019 selection of a ClipSet --------------------------------------------------------------

def _clipset(rows, class_names=megc2019.MEGC2019_CLASSES):
  n = len(rows)
  return ClipSet(
      frames=[np.zeros((2, 4, 4, 3), np.uint8)] * n,
      sample_id=np.asarray([r[1] for r in rows]), dataset=np.asarray([r[0] for r in rows]),
      subject=np.asarray([r[1].split("/")[0] for r in rows]),
      emotion=np.asarray(["x"] * n), action_units=np.asarray([""] * n),
      objective_class=np.zeros(n, np.int32), fps=np.ones(n, np.float32),
      onset=np.zeros(n, np.int32), apex=np.zeros(n, np.int32), offset=np.ones(n, np.int32),
      label=np.asarray([r[2] for r in rows], np.int32), class_names=tuple(class_names))


def test_megc2019_selection_keeps_composite_clips_and_records_the_rest():
  membership = megc2019.megc2019_membership()
  casme_rows = [(r.dataset, f"{r.subject}/{r.filename}", r.label) for r in membership
                if r.dataset == "casme2"]
  extra = [("casme2", "sub04/EP12_01f", 0), ("casme2", "sub05/EP09_05f", 1)]
  clips = _clipset(casme_rows + extra)
  selected = composites.select(clips, "megc2019")
  assert len(selected) == 145
  assert {d["sample_id"] for d in selected.dropped} == {"sub04/EP12_01f", "sub05/EP09_05f"}
  assert all(d["reason"] == "not in the MEGC2019 composite" for d in selected.dropped)
  assert composites.select(clips, "") is clips
  wrong = _clipset(casme_rows[:-1] + [(casme_rows[-1][0], casme_rows[-1][1],
                                       (casme_rows[-1][2] + 1) % 3)])
  with pytest.raises(ValueError, match="label mismatches"):
    composites.select(wrong, "megc2019")
  with pytest.raises(ValueError, match="membership rows without a clip"):
    composites.select(_clipset(casme_rows[:-1]), "megc2019")
  with pytest.raises(ValueError, match="label map's classes"):
    composites.select(_clipset(casme_rows, ("a", "b", "c")), "megc2019")
  with pytest.raises(ValueError, match="Unknown data.selection"):
    composites.select(clips, "megc2018")
