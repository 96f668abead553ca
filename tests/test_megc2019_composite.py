"""The MEGC2019 composite rebuilt from the datasets' own annotation sheets equals the ground truth.

CASME II and SAMM come from their real coding sheets (tests/data/annotations); SMIC-HS ships no
label sheet (labels are folder names), so its part is parsed from a folder tree laid out as the
release is (`HS/s1/micro/negative/s1_ne_01/`), with the clips the ground truth names.
"""

import dataclasses
import pathlib

import pytest

from mejax.data import megc2019 as membership_lib
from mejax.annotations import casme2
from mejax.annotations import megc2019
from mejax.annotations import records
from mejax.annotations import samm
from mejax.annotations import smic

ANNOTATIONS = pathlib.Path(__file__).parent / "data" / "annotations"
CASME2_SHEET = ANNOTATIONS / "casme2" / "CASME2-coding-20140508.xlsx"
SAMM_SHEET = ANNOTATIONS / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx"
_SMIC_FOLDER = {0: "negative", 1: "positive", 2: "surprise"}


@pytest.fixture(scope="module")
def membership():
  return membership_lib.megc2019_membership()


def _smic_tree(root: pathlib.Path, membership) -> pathlib.Path:
  """SMIC_all_cropped/HS as distributed: unpadded subject folders and clip names."""
  for row in membership:
    if row.dataset != "smic":
      continue
    subject = f"s{int(row.subject[1:])}"                       # 's01' -> 's1'
    clip = row.filename.replace(row.subject + "_", subject + "_", 1)  # 's01_ne_01' -> 's1_ne_01'
    folder = root / "HS" / subject / "micro" / _SMIC_FOLDER[row.label] / clip
    folder.mkdir(parents=True)
    (folder / "image000001.bmp").write_bytes(b"")
  return root


@pytest.fixture(scope="module")
def samples(membership, tmp_path_factory):
  smic_root = _smic_tree(tmp_path_factory.mktemp("SMIC_all_cropped"), membership)
  parsed = records.Parsed()
  for part in (casme2.parse(CASME2_SHEET), samm.parse(SAMM_SHEET),
               smic.parse(smic_root, camera="HS")):
    parsed.extend(part)
  return parsed.samples


def test_composite_equals_the_ground_truth_row_for_row(samples, membership):
  result = megc2019.composite(samples, membership)
  assert len(result.rows) == 442
  assert result.rows == list(membership)  # same rows, same order
  for row, sample in zip(result.rows, result.samples):
    assert membership_lib.MEGC2019_DATASET_ALIASES[sample.dataset] == row.dataset
    assert sample.sample_id.rsplit("/", 1)[-1].endswith(row.filename.split("_", 1)[-1])
    assert membership_lib.MEGC2019_CLASSES.index(sample.three_class) == row.label
  counts = megc2019.composite_counts(result)
  assert counts == {"smic": {"classes": [70, 51, 43], "subjects": 16},
                    "casme2": {"classes": [88, 32, 25], "subjects": 24},
                    "samm": {"classes": [92, 26, 15], "subjects": 28}}
  assert len(result.subjects) == 68


def test_only_the_two_documented_casme2_clips_are_left_out(samples, membership):
  result = megc2019.composite(samples, membership)
  assert sorted(skip.sample_id for skip in result.left_out) == ["sub04/EP12_01f",
                                                                "sub05/EP09_05f"]
  assert all("not in the MEGC2019 composite" in skip.reason for skip in result.left_out)
  # Both are visible in their own rows: an apex of '/', and onset == apex.
  by_id = {s.sample_id: s for s in samples}
  assert by_id["sub04/EP12_01f"].apex == -1
  assert by_id["sub05/EP09_05f"].onset == by_id["sub05/EP09_05f"].apex


def test_samm_apex_typo_rows_stay_in_the_composite(samples, membership):
  # The challenge kept 028_4_1 and 032_3_1 although their apex lies outside onset..offset; the
  # builder skips them unless repaired, so a real MEGC2019 build needs repair='midpoint' for SAMM.
  result = megc2019.composite(samples, membership)
  ids = {s.sample_id for s in result.samples}
  assert {"028/028_4_1", "032/032_3_1"} <= ids
  for sample_id in ("028/028_4_1", "032/032_3_1"):
    sample = next(s for s in samples if s.sample_id == sample_id)
    assert isinstance(records.check_timing(sample), records.Skip)
    assert records.check_timing(sample, "midpoint").repaired


def test_composite_refuses_a_label_that_disagrees_with_the_annotation(samples, membership):
  changed = [dataclasses.replace(s, emotion="happiness", three_class="positive")
             if s.sample_id == "006/006_1_2" else s for s in samples]
  with pytest.raises(ValueError, match=r"label mismatches: \['samm/6/006_1_2"):
    megc2019.composite(changed, membership)
  missing = [s for s in samples if s.sample_id != "sub01/EP02_01f"]
  with pytest.raises(ValueError, match=r"membership rows without a clip: \['casme2/sub01/EP02_01f"):
    megc2019.composite(missing, membership)


def test_parts_can_be_checked_alone(samples, membership):
  sheets_only = [s for s in samples if s.dataset != "smic"]
  result = megc2019.composite(sheets_only, membership, datasets=["casme2", "samm"])
  assert len(result.rows) == 145 + 133
