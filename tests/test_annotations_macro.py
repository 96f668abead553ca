"""Parsers of the macro-expression datasets labelled by files or folders (CK+, MUG, Oulu-CASIA),
on the builders' dummy trees (tfds_builders/<name>/dummy_data) and damaged copies of them."""

from __future__ import annotations

import json
import logging
import pathlib
import shutil

import pytest

from mejax.annotations import ckplus
from mejax.annotations import mug
from mejax.annotations import oulu_casia
from mejax.annotations.__main__ import main as cli

BUILDERS = pathlib.Path(__file__).parents[1] / "tfds_builders"
CKPLUS = BUILDERS / "ckplus" / "dummy_data"
MUG = BUILDERS / "mug" / "dummy_data"
OULU = BUILDERS / "oulu_casia" / "dummy_data"


def _copy(source: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
  return pathlib.Path(shutil.copytree(source, tmp_path / source.parent.name))


# ---- CK+ -----------------------------------------------------------------------------------------

def test_ckplus_samples(caplog):
  with caplog.at_level(logging.INFO, logger="mejax.annotations.ckplus"):
    parsed = ckplus.parse(CKPLUS)
  samples = {s.sample_id: s for s in parsed.samples}
  assert sorted(samples) == ["S005/001", "S010/002", "S010/003", "S011/002"]
  disgust = samples["S005/001"]
  assert (disgust.subject, disgust.clip, disgust.emotion, disgust.three_class) == (
      "S005", "S005/001", "disgust", "negative")
  assert disgust.action_units == "9+17"
  assert (disgust.onset, disgust.apex, disgust.offset) == (1, 5, 5)
  assert disgust.source == "Emotion/S005/001/S005_001_00000005_emotion.txt"
  assert disgust.fps == 30.0
  assert samples["S010/002"].emotion == "happiness"  # code 5 'happy'
  assert samples["S010/002"].action_units == "6+12"  # intensity 0 ('not given') keeps the AU
  assert samples["S011/002"].emotion == "contempt" and samples["S011/002"].action_units == ""
  # records.three_class uses the MEGC rule: contempt -> negative (the macro label map of
  # PROTOCOLS.md drops contempt at load time, from the fine emotion).
  assert samples["S011/002"].three_class == "negative"
  # The empty Emotion folders (S005/002, S010/001) are unlabelled sequences, not samples.
  assert "2 image sequences without an emotion file (2 of them with an empty Emotion folder)" \
      in caplog.text


def test_ckplus_bad_emotion_file_is_a_skip_naming_it():
  skipped = ckplus.parse(CKPLUS).skipped
  assert [(s.sample_id, s.file) for s in skipped] == [
      ("S011/001", "Emotion/S011/001/S011_001_00000005_emotion.txt")]
  assert "'n/a'" in skipped[0].reason and "emotion code 0-7" in skipped[0].reason


@pytest.mark.parametrize("text,emotion", [("   7.0000000e+00\n", "surprise"), ("0", "neutral"),
                                          ("4.0", "fear"), ("8.0000000e+00", None),
                                          ("2.5", None), ("", None)])
def test_ckplus_emotion_codes(tmp_path, text, emotion):
  root = _copy(CKPLUS, tmp_path)
  (root / "Emotion/S005/001/S005_001_00000005_emotion.txt").write_text(text)
  parsed = ckplus.parse(root)
  samples = {s.sample_id: s for s in parsed.samples}
  if emotion is None:
    assert "S005/001" in {s.sample_id for s in parsed.skipped}
  else:
    assert samples["S005/001"].emotion == emotion


def test_ckplus_problems_are_skips(tmp_path):
  root = _copy(CKPLUS, tmp_path)
  (root / "FACS/S005/001/S005_001_00000005_facs.txt").write_text("AU9 strong\n")
  shutil.rmtree(root / "cohn-kanade-images/S010/002")
  (root / "Emotion/S011/002/S011_002_00000004_emotion.txt").write_text("2.0\n")  # a second file
  skipped = {s.sample_id: s for s in ckplus.parse(root).skipped}
  assert skipped["S005/001"].file == "FACS/S005/001/S005_001_00000005_facs.txt"
  assert "AU9 strong" in skipped["S005/001"].reason
  assert skipped["S010/002"].file == "cohn-kanade-images/S010/002"
  assert "2 emotion files" in skipped["S011/002"].reason


def test_ckplus_without_facs_folder(tmp_path):
  root = _copy(CKPLUS, tmp_path)
  shutil.rmtree(root / "FACS")
  parsed = ckplus.parse(root)
  assert len(parsed.samples) == 4 and all(s.action_units == "" for s in parsed.samples)


def test_ckplus_wrong_folder(tmp_path):
  (tmp_path / "Landmarks").mkdir()
  with pytest.raises(FileNotFoundError, match=r"no cohn-kanade-images/ and no Emotion/.*Landmarks"):
    ckplus.parse(tmp_path)


def test_ckplus_cli(capsys):
  assert cli(["ckplus", str(CKPLUS), "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["summary"]["usable"] == 4 and out["summary"]["skipped"] == 1
  assert out["summary"]["subjects"] == 3


# ---- MUG -----------------------------------------------------------------------------------------

def test_mug_samples():
  parsed = mug.parse(MUG)
  samples = {s.sample_id: s for s in parsed.samples}
  assert sorted(samples) == ["001/anger/take000", "001/happiness/take001",
                             "002/session1/neutral/take002end", "002/session1/surprise/take003",
                             "002/session2/sadness/take000"]
  assert not parsed.skipped
  anger = samples["001/anger/take000"]
  assert (anger.subject, anger.clip, anger.emotion, anger.three_class) == (
      "001", "001/anger/take000", "anger", "negative")
  assert (anger.onset, anger.apex, anger.offset) == (-1, -1, -1)
  assert anger.fps == 19.0 and anger.source == "subjects3/001/anger/take000"
  assert samples["002/session1/surprise/take003"].subject == "002"  # session level
  assert samples["002/session1/neutral/take002end"].three_class == ""  # kept, no 3-class label
  # the subjects3 folder itself works as the path too
  assert [s.sample_id for s in mug.parse(MUG / "subjects3").samples] == list(samples)


def test_mug_foreign_folder_is_a_skip_and_wrong_root_an_error(tmp_path):
  root = _copy(MUG, tmp_path)
  (root / "subjects3/001/Anger_old/take000").mkdir(parents=True)
  skipped = mug.parse(root).skipped
  assert [(s.sample_id, s.file) for s in skipped] == [("001/Anger_old", "subjects3/001/Anger_old")]
  assert "neither an emotion" in skipped[0].reason
  with pytest.raises(FileNotFoundError, match=r"no subjects3/ folder.*img_0001\.jpg"):
    mug.parse(tmp_path / "elsewhere")


def test_mug_cli(capsys):
  assert cli(["mug", str(MUG), "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["summary"]["usable"] == 5 and out["summary"]["subjects"] == 2


# ---- Oulu-CASIA ----------------------------------------------------------------------------------

@pytest.mark.parametrize("camera,release,clip", [
    ("VL", "OriginalImg", "OriginalImg/VL/Strong/P001/Anger"),
    ("NI", "OriginalImg", "OriginalImg/NI/Strong/P001/Anger"),
    ("VL", "PreProcess", "PreProcess/VL_Acropped/Strong/P001/Anger"),
    ("NI", "PreProcess", "PreProcess/NI_Acropped/Strong/P001/Anger"),
])
def test_oulu_samples(camera, release, clip):
  parsed = oulu_casia.parse(OULU, camera=camera, release=release)
  samples = {s.sample_id: s for s in parsed.samples}
  assert sorted(samples) == ["P001/Anger", "P001/Happiness", "P002/Disgust", "P002/Surprise"]
  anger = samples["P001/Anger"]
  assert (anger.subject, anger.clip, anger.emotion, anger.three_class) == (
      "P001", clip, "anger", "negative")
  assert (anger.onset, anger.apex, anger.offset) == (0, 4, 4)  # first; last = apex = offset
  assert anger.fps == 25.0 and anger.source == clip
  # P002/Surprise lacks frame 002: the parser keeps first/last, the builder finds the gap
  assert (samples["P002/Surprise"].onset, samples["P002/Surprise"].offset) == (0, 4)


def test_oulu_release_folder_as_path():
  samples = oulu_casia.parse(OULU / "OriginalImg", camera="NI").samples
  assert samples[0].clip == "NI/Strong/P001/Anger"


def test_oulu_illumination_not_there_lists_where_it_looked():
  with pytest.raises(FileNotFoundError) as error:
    oulu_casia.parse(OULU, illumination="Dark")
  message = str(error.value)
  assert "OriginalImg/VL/Dark" in message and "P001/<Expression>/000.jpeg" in message
  with pytest.raises(ValueError, match="camera"):
    oulu_casia.parse(OULU, camera="IR")


def test_oulu_foreign_and_empty_folders_are_skips(tmp_path):
  root = _copy(OULU, tmp_path)
  strong = root / "OriginalImg/VL/Strong"
  (strong / "P001/Contempt").mkdir()
  (strong / "P002/Fear").mkdir()
  (strong / "backup/Anger").mkdir(parents=True)
  skipped = {s.sample_id: s for s in oulu_casia.parse(root).skipped}
  assert set(skipped) == {"P001/Contempt", "P002/Fear", "backup/Anger"}
  assert skipped["P002/Fear"].file == "OriginalImg/VL/Strong/P002/Fear"
  assert "no frames" in skipped["P002/Fear"].reason
  assert "not an expression folder" in skipped["P001/Contempt"].reason
  assert "not a subject folder" in skipped["backup/Anger"].reason


def test_oulu_cli(capsys):
  assert cli(["oulu_casia", str(OULU), "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["summary"]["usable"] == 4 and out["summary"]["subjects"] == 2
