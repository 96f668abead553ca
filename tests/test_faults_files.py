"""Fault injection on the input files of the command-line tools.

Every damaged, wrong or unreadable input must end in exactly one stderr line `error: <file>: ...`
and exit status 2, with no traceback and nothing written: `python -m mejax.annotations` on empty,
random, truncated and garbled copies of the real sheets (tests/data/annotations), sheets without
their columns, folders and files swapped; `python -m mejax.convert` on empty, random, truncated
and damaged weights, pickles that would run code, wrappers, bare tensors and a failure while
writing; `python -m mejax.prepare` / `tfds_build` on a manual dir that is missing, a file or empty.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import random
import subprocess
import sys
import zipfile

import numpy as np
import openpyxl
import pytest

from mejax import convert
from mejax import tfds_build
from mejax.annotations.__main__ import main as annotations_main

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "annotations"
SHEETS = {  # dataset -> its real annotation file
    "casme2": DATA / "casme2" / "CASME2-coding-20140508.xlsx",
    "samm": DATA / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx",
    "smic_e": DATA / "smic" / "SMIC-HS-E_annotation.xlsx",
    "casme_sq": DATA / "casme_sq" / "CAS(ME)^2code_final(Updated).csv",
}
WORKBOOKS = ["casme2", "samm", "smic_e"]
FOLDER_DATASETS = ["smic", "ckplus", "mug", "oulu_casia"]
WIDTH = 1 / 8  # R3D-18 at 8/16/32/64 channels: torchvision's keys at test cost


def _listing(folder: pathlib.Path) -> list[tuple[str, int, int]]:
  return sorted((str(p.relative_to(folder)), p.stat().st_size if p.is_file() else -1,
                 p.stat().st_mtime_ns) for p in folder.rglob("*"))


def _one_error_line(capsys, named: str) -> str:
  out, err = capsys.readouterr()
  lines = err.splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith("error: ") and named in lines[0], lines[0]
  assert "Traceback" not in err and out == ""
  return lines[0]


def _refused_sheet(capsys, dataset: str, path: pathlib.Path, folder: pathlib.Path) -> str:
  """Runs the annotations command on `path`: status 2, one line naming it, `folder` unchanged."""
  before = _listing(folder)
  assert annotations_main([dataset, str(path)]) == 2
  line = _one_error_line(capsys, str(path))
  assert _listing(folder) == before
  return line


def _copy(name: str, tmp_path: pathlib.Path, data: bytes, suffix: str) -> pathlib.Path:
  path = tmp_path / f"{name}{suffix}"
  path.write_bytes(data)
  return path


# ---- python -m mejax.annotations ---------------------------------------------------------------
def _damaged_copies(dataset: str, tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
  real = SHEETS[dataset]
  data, suffix = real.read_bytes(), real.suffix
  rng = random.Random(0)
  copies = {"empty": b"", "random": rng.randbytes(4096)}
  for fraction in (0.05, 0.5, 0.9, 0.999):
    copies[f"truncated_{fraction}"] = data[:int(len(data) * fraction)]
  garbled = bytearray(data)
  middle = len(garbled) // 2
  garbled[middle:middle + 256] = bytes(256)  # inside the compressed sheet: a CRC / zlib error
  copies["garbled"] = bytes(garbled)
  return {name: _copy(name, tmp_path, content, suffix) for name, content in copies.items()}


@pytest.mark.parametrize("dataset", WORKBOOKS)
def test_damaged_workbooks_end_in_one_error_line(dataset, tmp_path, capsys):
  for name, path in _damaged_copies(dataset, tmp_path).items():
    line = _refused_sheet(capsys, dataset, path, tmp_path)
    assert "expected an .xlsx workbook" in line, (name, line)


def test_damaged_csv_exports_end_in_one_error_line(tmp_path, capsys):
  real = SHEETS["casme_sq"].read_bytes()
  lines = real.decode("utf-8-sig").splitlines()
  middle = len(lines) // 2
  cut = "\n".join(lines[:middle] + [lines[middle][:lines[middle].index(",") + 4]])
  copies = {
      "empty": b"",
      "random": random.Random(1).randbytes(4096),  # binary: NUL bytes
      "text_garbage": b"lorem ipsum,dolor\nsit amet\n" * 20,
      "cut_mid_row": cut.encode(),  # a truncated export: the last row stops inside a field
      "workbook_named_csv": SHEETS["casme2"].read_bytes(),
  }
  for name, content in copies.items():
    path = _copy(name, tmp_path, content, ".csv")
    _refused_sheet(capsys, "casme_sq", path, tmp_path)
  # A workbook given a .csv name says what it is.
  assert "rename it to .xlsx" in _refused_sheet(capsys, "casme_sq",
                                                tmp_path / "workbook_named_csv.csv", tmp_path)


def test_xls_sheets_that_are_not_xls_end_in_one_error_line(tmp_path, capsys):
  for name, content in {"empty": b"", "random": random.Random(2).randbytes(2048),
                        "xlsx_inside": SHEETS["casme2"].read_bytes()}.items():
    path = _copy(f"Section {name}", tmp_path, content, ".xls")
    line = _refused_sheet(capsys, "casme", path, tmp_path)
  assert "it looks like an .xlsx workbook: rename it to .xlsx" in line


def test_zip_archives_and_other_formats_that_are_not_workbooks(tmp_path, capsys):
  not_a_workbook = tmp_path / "notes.xlsx"
  with zipfile.ZipFile(not_a_workbook, "w") as archive:
    archive.writestr("notes.txt", "a zip, but no xl/workbook.xml")
  assert "KeyError" in _refused_sheet(capsys, "samm", not_a_workbook, tmp_path)
  odd = _copy("coding", tmp_path, b"Subject,Filename\n", ".ods")
  assert "unsupported annotation format '.ods'" in _refused_sheet(capsys, "casme2", odd, tmp_path)


def _workbook_without(dataset: str, column: str, tmp_path: pathlib.Path) -> pathlib.Path:
  book = openpyxl.load_workbook(SHEETS[dataset])
  for sheet in book.worksheets:
    for row in sheet.iter_rows(max_row=20):
      for cell in row:
        if cell.value == column:
          sheet.delete_cols(cell.column)
          break
  path = tmp_path / f"{dataset}_without_{column.replace(' ', '_')}.xlsx"
  book.save(path)
  return path


@pytest.mark.parametrize("dataset,column", [("casme2", "Estimated Emotion"), ("samm", "Subject"),
                                            ("smic_e", "OnsetF")])
def test_real_workbooks_without_an_expected_column(dataset, column, tmp_path, capsys):
  path = _workbook_without(dataset, column, tmp_path)
  line = _refused_sheet(capsys, dataset, path, tmp_path)
  assert column.split()[0] in line


def test_another_datasets_sheet_is_refused(tmp_path, capsys):
  # The CASME II workbook as CAS(ME)^2's coding sheet, SAMM's as SMIC-E's (no HS sheet).
  for dataset, other in (("casme_sq", "casme2"), ("smic_e", "samm"), ("casme2", "casme_sq")):
    path = _copy(f"{other}_as_{dataset}", tmp_path, SHEETS[other].read_bytes(),
                 SHEETS[other].suffix)
    _refused_sheet(capsys, dataset, path, tmp_path)


def test_a_late_fatal_row_is_one_line_without_the_warnings_before_it(tmp_path, capsys):
  # The real SMIC-E sheet warns about row 38 (s18_sur_03 labelled negative); a bad Subject below
  # it must still end in one line, not after that warning.
  book = openpyxl.load_workbook(SHEETS["smic_e"])
  book["HS"].cell(row=150, column=1).value = "not a subject"
  path = tmp_path / "late_error.xlsx"
  book.save(path)
  assert "row 150" in _refused_sheet(capsys, "smic_e", path, tmp_path)


def test_folders_and_files_swapped_or_missing(tmp_path, capsys):
  folder = tmp_path / "a_folder"
  folder.mkdir()
  for dataset in ("casme_sq", "smic_e"):  # a file is expected
    assert "is a folder, not a file" in _refused_sheet(capsys, dataset, folder, tmp_path)
  for dataset in ("casme", "casme2", "samm"):  # a file, or a folder holding it
    _refused_sheet(capsys, dataset, folder, tmp_path)
  sheet = _copy("sheet", tmp_path, SHEETS["casme2"].read_bytes(), ".xlsx")
  for dataset in FOLDER_DATASETS:  # a folder is expected
    assert "file" in _refused_sheet(capsys, dataset, sheet, tmp_path)
  for dataset in ["casme", "casme2", "casme_sq", "samm", "smic_e"] + FOLDER_DATASETS:
    line = _refused_sheet(capsys, dataset, tmp_path / "nothing.xlsx", tmp_path)
    assert "does not exist" in line or "not found" in line


def test_a_found_sheet_that_is_damaged_is_named(tmp_path, capsys):
  release = tmp_path / "CASME2"
  release.mkdir()
  (release / "CASME2-coding-20140508.xlsx").write_bytes(b"")
  line = _refused_sheet(capsys, "casme2", release, tmp_path)
  assert "CASME2-coding-20140508.xlsx: is empty" in line


def test_unreadable_files(tmp_path, capsys, monkeypatch):
  sheet = _copy("locked", tmp_path, SHEETS["samm"].read_bytes(), ".xlsx")
  if os.geteuid() != 0:  # root reads anything: then the read error is injected below only
    sheet.chmod(0)
    try:
      assert "Permission denied" in _refused_sheet(capsys, "samm", sheet, tmp_path)
    finally:
      sheet.chmod(0o644)

  def denied(path, *args, **kwargs):
    raise PermissionError(13, "Permission denied", str(path))
  monkeypatch.setattr(openpyxl, "load_workbook", denied)
  assert "Permission denied" in _refused_sheet(capsys, "samm", sheet, tmp_path)


# ---- python -m mejax.convert -------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
  return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def state_dict(torch):
  from mejax.models import convert as convert_lib
  generator = torch.Generator().manual_seed(0)
  return {key: torch.randn(shape, generator=generator) if shape else torch.tensor(0)
          for key, shape in convert_lib.torchvision_r3d18_shapes(400, WIDTH).items()}


def _refused_weights(capsys, weights: pathlib.Path, tmp_path: pathlib.Path) -> str:
  """mejax.convert on `weights`: status 2, one line naming it, no --out, nothing else written."""
  out = tmp_path / "converted"
  before = _listing(tmp_path)
  assert convert.main([str(weights), "--out", str(out), "--width_multiplier", str(WIDTH)]) == 2
  line = _one_error_line(capsys, str(weights))
  assert not out.exists() and _listing(tmp_path) == before
  return line


class _WritesMarker:
  """Unpickling this (with an unsafe loader) creates the file `marker`."""

  def __init__(self, marker: pathlib.Path):
    self.marker = marker

  def __reduce__(self):
    return (open, (str(self.marker), "w"))


def test_pickles_that_would_run_code_are_refused_before_running(torch, tmp_path, capsys):
  marker = tmp_path / "marker_written_by_unpickling"
  weights = tmp_path / "evil.pth"
  torch.save({"stem.0.weight": _WritesMarker(marker)}, weights)  # torch.save's zip format
  raw = tmp_path / "evil_raw.pth"
  raw.write_bytes(pickle.dumps(_WritesMarker(marker), protocol=4))  # a plain pickle
  for path in (weights, raw):
    assert "nothing in it was run" in _refused_weights(capsys, path, tmp_path)
  assert not marker.exists()


def test_damaged_weights_files(torch, state_dict, tmp_path, capsys):
  real = tmp_path / "real.pth"
  torch.save(state_dict, real)
  data = real.read_bytes()
  garbled = bytearray(data)
  garbled[len(data) // 2:len(data) // 2 + 64] = bytes(64)  # tensor bytes: only the CRC tells
  npz = tmp_path / "real.npz"
  np.savez(npz, **{k: v.numpy() for k, v in state_dict.items()})
  npz_data = npz.read_bytes()
  npz.unlink()
  real.unlink()
  rng = random.Random(3)
  cases = {
      "empty.pth": b"", "random.pth": rng.randbytes(4096), "truncated.pth": data[:len(data) // 2],
      "truncated_end.pth": data[:-10], "garbled.pth": bytes(garbled),
      "empty.npz": b"", "random.npz": rng.randbytes(4096), "truncated.npz": npz_data[:-10],
      "workbook.npz": SHEETS["casme2"].read_bytes(),  # a zip of other members
      "random.safetensors": rng.randbytes(512),
  }
  for name, content in cases.items():
    path = _copy(name.split(".")[0], tmp_path, content, "." + name.split(".")[1])
    line = _refused_weights(capsys, path, tmp_path)
    if name in ("random.npz", "truncated.npz"):
      assert "not a readable .npz archive" in line and "pickle" not in line, line
    assert "pickled Python objects" not in line, line  # damage, not a refused object
    path.unlink()
  for seed in range(20):  # random bytes that torch's weights-only unpickler starts to read
    path = _copy("noise", tmp_path, random.Random(seed).randbytes(256), ".pth")
    line = _refused_weights(capsys, path, tmp_path)
    assert "damaged, truncated or of another format" in line, line
    path.unlink()


def test_weights_that_are_not_a_state_dict(torch, state_dict, tmp_path, capsys):
  cases = {
      "bare_tensor": (torch.randn(3), "found a Tensor"),
      "list": ([torch.randn(3)], "found a list"),
      "training_state": ({"optimizer": {"lr": 0.1}, "epoch": 3},
                         "keys ['epoch', 'optimizer']"),
      "non_tensor_value": ({"state_dict": {**state_dict, "fc.note": "text"}},
                           "'fc.note' (in 'state_dict') holds a str"),
      "empty_mapping": ({}, "found an empty mapping"),
      "other_model": ({"weight": torch.randn(2, 2)}, "missing keys ['fc.bias', 'fc.weight'"),
  }
  for name, (content, expected) in cases.items():
    path = tmp_path / f"{name}.pth"
    torch.save(content, path)
    assert expected in _refused_weights(capsys, path, tmp_path), name
    path.unlink()
  npz = tmp_path / "objects.npz"
  np.savez(npz, **{"stem.0.weight": np.array([{"a": 1}], dtype=object)})
  assert "pickled Python objects" in _refused_weights(capsys, npz, tmp_path)
  npz.unlink()
  (tmp_path / "a_folder.pth").mkdir()
  assert "is a folder" in _refused_weights(capsys, tmp_path / "a_folder.pth", tmp_path)
  assert "does not exist" in _refused_weights(capsys, tmp_path / "missing.pth", tmp_path)
  assert "Unknown weights format" in _refused_weights(capsys, SHEETS["casme2"], tmp_path)


@pytest.mark.parametrize("wrapper", ["model", "state_dict", "model_state_dict"])
def test_common_checkpoint_wrappers_are_unwrapped(torch, wrapper, state_dict, tmp_path, capsys):
  weights = tmp_path / "checkpoint.pth"
  torch.save({wrapper: state_dict, "epoch": 7, "optimizer": {"lr": 0.1}}, weights)
  out = tmp_path / "converted"
  assert convert.main([str(weights), "--out", str(out), "--width_multiplier", str(WIDTH)]) == 0
  assert capsys.readouterr().err == ""
  variables, info = convert.load(out)
  np.testing.assert_array_equal(variables["params"]["fc"]["bias"], state_dict["fc.bias"].numpy())
  assert info["num_classes"] == 400
  assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth", "converted"]
  # An existing --out is refused and left as it was.
  before = _listing(tmp_path)
  assert convert.main([str(weights), "--out", str(out), "--width_multiplier", str(WIDTH)]) == 2
  assert "exists" in _one_error_line(capsys, str(out)) and _listing(tmp_path) == before


def test_a_failure_while_writing_leaves_no_out(torch, state_dict, tmp_path, capsys, monkeypatch):
  import orbax.checkpoint as ocp
  weights = tmp_path / "weights.pth"
  torch.save(state_dict, weights)

  def disk_full(self):
    raise OSError(28, "No space left on device")
  # The checkpoint's files are written, then waiting for them fails: half a conversion.
  monkeypatch.setattr(ocp.StandardCheckpointer, "wait_until_finished", disk_full)
  out = tmp_path / "new" / "parents" / "converted"
  assert convert.main([str(weights), "--out", str(out), "--width_multiplier", str(WIDTH)]) == 2
  assert "No space left on device" in _one_error_line(capsys, str(out))
  assert [p.name for p in tmp_path.iterdir()] == ["weights.pth"]  # no out, parents or partials


# ---- python -m mejax.prepare / tfds_build: the manual dir --------------------------------------
def test_input_errors_of_a_build_are_one_line(tmp_path):
  instructions = "Point --manual_dir at the folder holding\n  subjects3/001/anger/take000/"
  missing = AssertionError(f"Manual directory {tmp_path}/nowhere does not exist or is empty. "
                           f"Create it and download/extract dataset artifacts in there using "
                           f"instructions:\n{instructions}")
  line = tfds_build.input_error_line(missing)
  assert line.startswith(f"{tmp_path}/nowhere: does not exist or is empty") and "\n" not in line
  assert "subjects3/001/anger/take000/" in line
  a_file = NotADirectoryError(20, "Not a directory", str(tmp_path / "sheet.xlsx"))
  assert tfds_build.input_error_line(a_file).startswith(f"{tmp_path}/sheet.xlsx: is a file")
  builder = FileNotFoundError("casme2: no CASME II coding sheet found. Expected:\n  layout")
  assert tfds_build.input_error_line(builder) == ("casme2: no CASME II coding sheet found. "
                                                  "Expected: layout")
  assert tfds_build.input_error_line(AssertionError("an internal check")) is None
  assert tfds_build.input_error_line(ValueError("not about files")) is None


def _run(args: list[str]) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)


def test_commands_print_no_traceback_to_a_terminal(torch, state_dict, tmp_path):
  """One subprocess each: what a user sees, imports and interpreter exit included."""
  sheet = _copy("random", tmp_path, random.Random(4).randbytes(1024), ".xlsx")
  result = _run(["-m", "mejax.annotations", "casme2", str(sheet)])
  assert result.returncode == 2 and result.stdout == ""
  assert result.stderr.splitlines() == [result.stderr.strip()]
  assert result.stderr.startswith(f"error: {sheet}: expected an .xlsx workbook")

  weights = tmp_path / "wrapped.pth"
  torch.save({"optimizer": {"lr": 0.1}}, weights)
  result = _run(["-m", "mejax.convert", str(weights), "--out", str(tmp_path / "out")])
  assert result.returncode == 2 and result.stdout == "" and not (tmp_path / "out").exists()
  assert result.stderr.splitlines() == [result.stderr.strip()]
  assert result.stderr.startswith(f"error: {weights}: a state_dict (mapping of names to tensors)")


def test_prepare_with_a_file_as_manual_dir(tmp_path):
  sheet = _copy("sheet", tmp_path, SHEETS["samm"].read_bytes(), ".xlsx")
  result = _run(["-m", "mejax.prepare", "samm/raw", "--manual_dir", str(sheet), "--data_dir",
                 str(tmp_path / "tfds")])
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert result.stderr.splitlines()[-1] == (
      f"error: {sheet}: is a file, not a folder; expected the folder holding the dataset's files "
      "(--manual_dir)")


@pytest.mark.parametrize("tool, argv, message", [
    ("annotations", ["nosuch", "F"], "argument dataset: invalid choice: 'nosuch'"),
    ("annotations", ["casme2", "F", "--repair", "fix"], "argument --repair: invalid choice"),
    ("convert", ["w.pth"], "the following arguments are required: --out"),
    ("convert", ["w.pth", "--out", "o", "--width_multiplier", "0"],
     "argument --width_multiplier: 0.0: expected a number > 0"),
    ("convert", ["w.pth", "--out", "o", "--width_multiplier", "-1"],
     "argument --width_multiplier: -1.0: expected a number > 0"),
    ("analyze", ["--workdir", "w", "--examples_per_class", "-1"],
     "argument --examples_per_class: -1 is below 0; expected an integer >= 0"),
    ("predict", ["--workdir", "w", "clips", "--select", "foo"],
     "argument --select: invalid choice: 'foo'"),
])
def test_a_bad_command_line_is_one_error_line(tool, argv, message, capsys):
  """argparse's usage block replaced by one `error:` line, exit status 2, for every tool."""
  import importlib
  main = {"annotations": annotations_main}.get(tool) or importlib.import_module(
      f"mejax.{tool}").main
  with pytest.raises(SystemExit) as exit_:
    main(argv)
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert err.splitlines() == [err.strip()]
  assert err.startswith(f"error: {message}") and f"python -m mejax.{tool} --help" in err


@pytest.mark.parametrize("argv, line", [
    (["-m", "mejax.prepare", "synthetic_me/nosuch"],
     "error: Dataset 'synthetic_me/nosuch' cannot be loaded (BuilderConfig nosuch not found"),
    (["-m", "mejax.prepare", "synthetic_me/micro_tiny", "--data_dir", "{file}"],
     "error: --data_dir {file}: is a file; expected the folder datasets are built into"),
    (["-m", "mejax.prepare", "casme2/cropped", "--manual_dir", "nosuch={tmp}"],
     "error: --manual_dir nosuch={tmp}: 'nosuch' is not a dataset being built (casme2)"),
    (["-m", "mejax.models", "summary"], "error: --config is required"),
    (["-m", "mejax.models", "summarize", "--config", "configs/convlstm.py:smoke"],
     "error: expected the command `summary`, got ['summarize']"),
])
def test_absl_commands_end_a_wrong_command_in_one_line(argv, line, tmp_path):
  file = tmp_path / "a_file"
  file.write_text("x")
  fill = lambda text: text.format(file=file, tmp=tmp_path)
  result = _run([fill(arg) for arg in argv] + ["--data_dir", str(tmp_path / "tfds")] * (
      "--data_dir" not in argv and argv[1] == "mejax.prepare"))
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(fill(line)), result.stderr[-2000:]
  assert not (tmp_path / "tfds").exists()  # nothing was built or left behind


def test_a_build_that_yields_no_clip_ends_in_one_error_line_after_its_progress_bars(tmp_path):
  """The real CASME II sheet beside one 3-frame clip folder: every row is skipped, and the
  error line starts a line of its own after TFDS's progress bars (a log grep finds it)."""
  import cv2
  manual = tmp_path / "casme2"
  (manual / "Cropped" / "sub01" / "EP02_01f").mkdir(parents=True)
  for i in (1, 2, 3):
    cv2.imwrite(str(manual / "Cropped" / "sub01" / "EP02_01f" / f"img{i}.jpg"),
                np.full((32, 32, 3), 60 * i, np.uint8))
  (manual / SHEETS["casme2"].name).write_bytes(SHEETS["casme2"].read_bytes())
  for command in (["-m", "mejax.prepare", "casme2/cropped"],
                  ["-m", "mejax.tfds_build", "casme2/cropped"]):
    result = _run([*command, "--manual_dir", str(manual), "--data_dir", str(tmp_path / "tfds")])
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: casme2/cropped: no clip could be built from"), result.stderr[-2000:]
