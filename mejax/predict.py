"""python -m mejax.predict --workdir W CLIPS: a run's models on new clips, as class probabilities.

CLIPS is one of (an existing file or folder is taken as frames or a video, anything else as a
dataset name)
  * a built dataset, e.g. synthetic_me/micro_tiny or casme2/cropped (read from --data_dir, default
    the run's config.data.data_dir; needs TensorFlow). Every clip is predicted, also those the
    run's label map leaves out: the `label` column is then empty;
  * a folder of frame images (frame numbers from the file names, see --pattern) or a video file
    (anything OpenCV reads; frame numbers are 0-based frame indices). --onset/--offset are frame
    numbers (default: the first and last frame), --apex may be omitted (not annotated). The clip
    onset..offset goes through the builders' pipeline: face crop on its first frame (--crop, as
    for a raw release), resize to --size, then the run's view.

Which models:
  * --fold NAME: that fold's model. Clips of its test set are honest test predictions (the run's
    predictions.csv holds the same numbers); every other clip of the run's data was in its
    training set.
  * default: the mean of every trained fold's class probabilities (an ensemble). Each fold's model
    never saw its test clips, but together they have seen all of the run's data: in a LOSO run
    each fold's model never saw one subject, and the ensemble has seen every subject. On clips of
    the training subjects it is NOT an honest test figure (the run's predictions.csv is); on new
    people it is a reasonable ensemble.

Output: a CSV (default WORKDIR/predict/<clips>.csv, or <clips>.<fold>.csv with --fold; an
existing file is only replaced with --overwrite) with sample_id, label (datasets only), prediction,
p_<class>..., then `fold` (--fold) or `folds_averaged` (the default), and for a dataset the run
trained on, `seen_in_training`: how many of the models used had the clip in their training or
inner-validation set (0: an honest prediction). A table of the same is printed.

Bad input (no checkpoint, unknown fold, undecodable video, no frames, frames outside the clip,
no face) is refused with one line naming the file or key and exit code 2; nothing is written then.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import logging
import os
import pathlib
import re
import sys

# FFmpeg prints its own complaint about an undecodable video to stderr; ours names the file.
# Read when OpenCV loads, so set before its import.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mejax import cli  # noqa: E402
from mejax import files  # noqa: E402
from mejax import reports  # noqa: E402
from mejax import runs  # noqa: E402
from mejax.data import clipset as clipset_lib  # noqa: E402
from mejax.data import dataset_names  # noqa: E402
from mejax.data import labels as labels_lib  # noqa: E402
from mejax.data import schema  # noqa: E402
from mejax.data import view_cache  # noqa: E402
from mejax.data import views  # noqa: E402
from mejax.preprocess import frames as frames_lib  # noqa: E402

IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "ppm", "pgm")
# Accepts img001.jpg, 0001.png, frame_12.jpg, reg_img46.bmp ...: the number is the last run of
# digits before the image extension (numbered_frames matches case-insensitively).
DEFAULT_PATTERN = rf"(?:.*\D)?(?P<n>\d+)\.(?:{'|'.join(IMAGE_SUFFIXES)})"
CROPS = ("face", "strcn", "none")
# The builders' stored frame size (tfds_builders/clip_builder.py ClipConfig.size).
DEFAULT_SIZE = 128


class PredictError(ValueError):
  """Input that cannot be predicted; the message names the file, folder or key at fault."""


@dataclasses.dataclass
class Clips:
  """Clips in the run's view, with what is known about each."""
  name: str                      # names the default CSV file
  sample_ids: list[str]
  views: np.ndarray              # uint8 [N, T, H, W, C], the run's view
  labels: list[str] | None       # true class under the run's label map ('' unknown); None: no
                                 # labels at all (frames, video)
  notes: list[str] = dataclasses.field(default_factory=list)
  # Dataset clips only: index of each clip in the run's folds (-1: not in the run's data).
  fold_index: np.ndarray | None = None


@dataclasses.dataclass
class Prediction:
  """Class probabilities of the clips under one fold's model or the mean of several."""
  probabilities: np.ndarray      # float [N, C]
  folds: list[str]               # the folds whose models were used
  seen_in_training: np.ndarray | None  # int [N]: of those models, how many trained on the clip

  @property
  def predicted(self) -> np.ndarray:
    return np.argmax(self.probabilities, axis=1)


# ---- clips -------------------------------------------------------------------------------------

def _unlabelled_kept(label_map: labels_lib.LabelMap) -> labels_lib.LabelMap:
  """The run's label map, except that a clip it leaves out is kept with label -1: a prediction
  needs no label."""
  def assign(emotion: str, objective_class: int, dataset: str, sample_id: str = "") -> int:
    cls = label_map.assign(emotion, objective_class, dataset, sample_id)
    return -1 if cls is None else cls
  return dataclasses.replace(label_map, assign=assign)


def clips_from_records(records, name: str, data) -> Clips:
  """Clips of decoded dataset records (dicts of `mejax.data.schema`) in the view of `data` (a
  run's config.data), labelled by its label map where it assigns a class."""
  label_map = labels_lib.get_label_map(data.label_map)
  clips = clipset_lib.from_records(records, _unlabelled_kept(label_map))
  if not len(clips):
    raise PredictError(f"dataset {name}: no clips")
  try:
    view = views.make_view(clips, data)  # the same function training's view cache calls
  except ValueError as e:
    raise PredictError(f"dataset {name}: {e}") from None
  labels = ["" if c < 0 else label_map.class_names[c] for c in clips.label]
  notes = []
  unlabelled = labels.count("")
  if unlabelled:
    notes.append(f"{unlabelled} of {len(labels)} clips have no class under label map "
                 f"{label_map.name!r}: predicted, with an empty label")
  return Clips(name=name, sample_ids=clips.uid.tolist(), views=view, labels=labels, notes=notes)


def dataset_clips(run: runs.Run, name: str, data_dir: str | None) -> Clips:
  """Every clip of built dataset `name` in the run's view (TFRecords, read with TensorFlow)."""
  data = run.config.data.copy_and_resolve_references()
  with data.unlocked():
    data.datasets = (name,)
    if data_dir:
      data.data_dir = str(data_dir)
  try:
    _, config_name, _, _ = dataset_names.parse(name)
  except ValueError:
    raise PredictError(f"{name}: no such file or folder, and not a dataset name "
                       "(name/config, e.g. synthetic_me/micro)") from None
  # Without TensorFlow: a dataset that was never built in the data dir is refused at once.
  if config_name and view_cache.dataset_info_path(name, data.data_dir) is None:
    raise PredictError(f"{name}: no such file or folder, and no dataset of that name built in "
                       f"{data.data_dir} (--data_dir names where it is)")
  try:
    tfds = clipset_lib.import_tfds()
  except ImportError as e:
    raise PredictError(f"reading dataset {name} needs TensorFlow and tensorflow-datasets ({e}); "
                       "or predict its frames as a folder") from None
  try:
    builder = tfds.builder(name, data_dir=data.data_dir)
  except ValueError as e:  # DatasetNotFoundError is one
    first_line = str(e).strip().splitlines()[0]
    raise PredictError(f"{name}: no such file or folder, and not a known dataset "
                       f"({first_line})") from None
  if not builder.is_prepared():
    raise PredictError(f"dataset {name} is not built in {data.data_dir} (--data_dir names where "
                       f"it is; `python -m mejax.prepare {name}` builds it)")
  records = []
  for split in builder.info.splits:
    records.extend(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
  records.sort(key=lambda r: r[schema.SAMPLE_ID])  # the table and CSV in sample order
  clips = clips_from_records(records, name, data)
  if name in run.config.data.datasets:  # the run's own clips: which models trained on them
    position = {uid: i for i, uid in enumerate(run.folds.sample_ids)}
    clips.fold_index = np.asarray([position.get(uid, -1) for uid in clips.sample_ids])
  return clips


def _check_timing(onset: int, apex: int, offset: int, first: int, last: int, where: str,
                  unit: str) -> None:
  """Refuses onset/apex/offset outside first..last or out of order (apex -1: not annotated)."""
  timing = f"onset {onset}, apex {apex}, offset {offset}"
  outside = [n for n in (onset, offset) + ((apex,) if apex != -1 else ()) if not first <= n <= last]
  if outside:
    raise PredictError(f"{where}: {unit}(s) {outside} ({timing}) outside its {unit}s "
                       f"{first}..{last}")
  if not onset <= offset or (apex != -1 and not onset <= apex <= offset):
    raise PredictError(f"{where}: {timing} out of order (onset <= apex <= offset expected)")


def folder_frames(folder: pathlib.Path, onset: int | None, apex: int, offset: int | None,
                  pattern: str) -> tuple[np.ndarray, tuple[int, int, int], tuple[int, int]]:
  """(uint8 RGB frames onset..offset, (onset, apex, offset) relative to them, (onset, offset)
  frame numbers) of a folder of numbered frame images."""
  try:
    re.compile(pattern)
  except re.error as e:
    raise PredictError(f"--pattern {pattern!r}: not a regular expression ({e})") from None
  if "(?P<n>" not in pattern:
    raise PredictError(f"--pattern {pattern!r} has no group (?P<n>\\d+) for the frame number")
  available = frames_lib.numbered_frames(folder, pattern)
  first, last = min(available), max(available)
  onset = first if onset is None else onset
  offset = last if offset is None else offset
  _check_timing(onset, apex, offset, first, last, str(folder), "frame")
  numbers, relative = frames_lib.select_range(available, onset, apex, offset, "onset_offset",
                                              folder)
  return frames_lib.read_frames(available, numbers), relative, (onset, offset)


def _rgb(frame: np.ndarray, where: str) -> np.ndarray:
  """uint8 RGB (H, W, 3) of an OpenCV-decoded (BGR, BGRA or grey) frame."""
  if frame.dtype != np.uint8:
    raise PredictError(f"{where}: frames of dtype {frame.dtype}; 8-bit frames expected")
  if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
    return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2RGB)
  if frame.ndim == 3 and frame.shape[2] == 3:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
  if frame.ndim == 3 and frame.shape[2] == 4:
    return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
  raise PredictError(f"{where}: frames of shape {frame.shape}; (H, W), (H, W, 1), (H, W, 3) or "
                     "(H, W, 4) expected")


def video_frames(path: pathlib.Path, onset: int | None, apex: int, offset: int | None
                 ) -> tuple[np.ndarray, tuple[int, int, int], tuple[int, int]]:
  """(uint8 RGB frames onset..offset, (onset, apex, offset) relative to them, (onset, offset)
  frame indices) of a video file; frames after the offset are not decoded."""
  if path.suffix.lower().lstrip(".") in IMAGE_SUFFIXES:  # OpenCV would read it as a 1-frame video
    raise PredictError(f"{path}: one image is not a clip; give the folder of the clip's frames")
  capture = cv2.VideoCapture(str(path))
  try:
    if not capture.isOpened():
      raise PredictError(f"{path}: not a video OpenCV can decode")
    onset = 0 if onset is None else onset
    kept, count = [], 0
    while offset is None or count <= offset:
      ok, frame = capture.read()
      if not ok:
        break
      if count >= onset:
        kept.append(_rgb(frame, str(path)))
      count += 1
  finally:
    capture.release()
  if count == 0:
    raise PredictError(f"{path}: not a video OpenCV can decode (no frame could be read)")
  offset = count - 1 if offset is None else offset
  _check_timing(onset, apex, offset, 0, count - 1, str(path), "frame")
  relative = (0, apex - onset if apex != -1 else -1, offset - onset)
  return np.stack(kept), relative, (onset, offset)


def frames_view(frames: np.ndarray, relative: tuple[int, int, int], data, crop: str, size: int,
                where: str) -> np.ndarray:
  """The run's view (T, H, W, C) of one clip's RGB frames, through the builders' steps: face crop
  located on the clip's first frame (the onset), resize to the stored size, then the view."""
  if crop != "none":
    from mejax.preprocess import faces  # OpenCV cascades: only uncropped frames need them
    try:
      frames = faces.crop_clip(frames, size=size, rule=crop, reference=0)
    except faces.FaceNotFound as e:
      raise PredictError(f"{where}: {e}; if the frames are already face crops, pass --crop none"
                         ) from None
  frames = frames_lib.resize_frames(frames, size)
  try:
    return views.clip_view(frames, *relative, data)
  except ValueError as e:
    raise PredictError(f"{where}: {e}") from None


def file_clips(run: runs.Run, path: pathlib.Path, *, onset: int | None, apex: int,
               offset: int | None, pattern: str, crop: str, size: int) -> Clips:
  """One clip from a folder of frames or a video file, in the run's view."""
  if size < 1:
    raise PredictError(f"--size {size}: must be positive")
  if path.is_dir():
    frames, relative, (first, last) = folder_frames(path, onset, apex, offset, pattern)
  else:
    frames, relative, (first, last) = video_frames(path, onset, apex, offset)
  view = frames_view(frames, relative, run.config.data, crop, size, str(path))
  note = (f"{path}: frames {first}..{last}"
          + (f", apex {first + relative[1]}" if relative[1] != -1 else ", apex not given")
          + f"; {frames.shape[2]}x{frames.shape[1]} frames, "
          + (f"face crop '{crop}'" if crop != "none" else "taken as face crops (--crop none)")
          + f" to {size}x{size}, then the run's view {'x'.join(map(str, view.shape))}")
  return Clips(name=path.stem if path.is_file() else path.name, sample_ids=[str(path)],
               views=view[None], labels=None, notes=[note])


# ---- models ------------------------------------------------------------------------------------

def predict(run: runs.Run, clips: Clips, fold: str | None = None) -> Prediction:
  """Class probabilities of `fold`'s model, or the mean over every trained fold's model."""
  run.check_clips(clips.views)
  folds = [fold] if fold is not None else list(run.fold_names)
  probabilities = np.zeros((len(clips.views), run.num_classes))
  for name in folds:
    logits, _ = run.apply(name, clips.views)
    probabilities += reports.softmax(np.asarray(logits, np.float64))
  probabilities /= len(folds)
  seen = None
  if clips.fold_index is not None:
    rows = [run.folds.fold_index(name) for name in folds]
    trained_on = run.folds.train[rows] | run.folds.val[rows]          # [folds, run's samples]
    known = clips.fold_index >= 0
    seen = np.zeros(len(clips.sample_ids), np.int64)
    seen[known] = trained_on[:, clips.fold_index[known]].sum(axis=0)
  return Prediction(probabilities=probabilities, folds=folds, seen_in_training=seen)


# ---- output ------------------------------------------------------------------------------------

def _columns(run: runs.Run, clips: Clips, prediction: Prediction, single_fold: bool
             ) -> tuple[list[str], list[list[str]]]:
  header = ["sample_id"] + (["label"] if clips.labels is not None else []) + ["prediction"]
  header += [f"p_{c}" for c in run.class_names]
  header += ["fold"] if single_fold else ["folds_averaged"]
  if prediction.seen_in_training is not None:
    header += ["seen_in_training"]
  rows = []
  for i, sample_id in enumerate(clips.sample_ids):
    row = [sample_id] + ([clips.labels[i]] if clips.labels is not None else [])
    row += [run.class_names[prediction.predicted[i]]]
    row += [f"{p:.6f}" for p in prediction.probabilities[i]]
    row += [prediction.folds[0]] if single_fold else [str(len(prediction.folds))]
    if prediction.seen_in_training is not None:
      row += [str(int(prediction.seen_in_training[i]))]
    rows.append(row)
  return header, rows


def predictions_csv(run: runs.Run, clips: Clips, prediction: Prediction,
                    single_fold: bool) -> str:
  header, rows = _columns(run, clips, prediction, single_fold)
  out = io.StringIO(newline="")
  writer = csv.writer(out)
  writer.writerow(header)
  writer.writerows(rows)
  return out.getvalue()


def format_table(run: runs.Run, clips: Clips, prediction: Prediction) -> str:
  """sample id, label (datasets), prediction and the class probabilities, one clip a line."""
  header = ["sample_id"] + (["label"] if clips.labels is not None else []) + ["prediction"]
  header += list(run.class_names)
  rows = []
  for i, sample_id in enumerate(clips.sample_ids):
    rows.append([sample_id] + ([clips.labels[i] or "-"] if clips.labels is not None else [])
                + [run.class_names[prediction.predicted[i]]]
                + [f"{p:.3f}" for p in prediction.probabilities[i]])
  widths = [max(len(r[j]) for r in [header] + rows) for j in range(len(header))]
  texts = len(header) - run.num_classes
  line = lambda r: "  ".join(v.ljust(w) if j < texts else v.rjust(w)
                             for j, (v, w) in enumerate(zip(r, widths))).rstrip()
  return "\n".join(line(r) for r in [header] + rows)


def default_out(workdir: pathlib.Path, clips_name: str, fold: str | None) -> pathlib.Path:
  """WORKDIR/predict/<clips>.csv, or <clips>.<fold>.csv for one fold; names made file-safe."""
  safe = lambda text: re.sub(r"[^\w.-]+", "_", text).strip("_.") or "clips"
  stem = safe(clips_name) + (f".{safe(fold)}" if fold is not None else "")
  return workdir / "predict" / f"{stem}.csv"


def write_new(path: pathlib.Path, text: str, overwrite: bool) -> None:
  """Writes atomically (a half-written CSV is never left); an existing file only if overwrite."""
  if path.exists() and not overwrite:
    raise PredictError(f"{path} exists; pass --overwrite to replace it, or another --out")
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, text)
  except OSError as e:
    raise PredictError(f"{path}: cannot write ({e.strerror or e}); choose another --out"
                       ) from None


# ---- command -----------------------------------------------------------------------------------

def _clips_name(clips_arg: str) -> str:
  path = pathlib.Path(clips_arg).expanduser()
  if path.is_dir():
    return path.resolve().name
  if path.exists():
    return path.stem
  return clips_arg


def run_prediction(args) -> tuple[pathlib.Path, str]:
  """Loads the run and the clips, predicts, writes the CSV; returns (CSV path, printed text)."""
  workdir = pathlib.Path(args.workdir).expanduser()
  clips_path = pathlib.Path(args.clips).expanduser()
  is_file_clip = clips_path.exists()
  frame_flags = {"--onset": args.onset, "--apex": args.apex, "--offset": args.offset,
                 "--pattern": args.pattern, "--crop": args.crop, "--size": args.size}
  if not is_file_clip:
    given = [flag for flag, value in frame_flags.items() if value is not None]
    if given:
      raise PredictError(f"{args.clips}: {', '.join(given)} only apply to a folder of frames or "
                         "a video, and no such file or folder exists")
  elif args.data_dir:
    raise PredictError(f"{args.clips}: --data_dir only applies to a dataset name")
  elif args.pattern is not None and not clips_path.is_dir():
    raise PredictError(f"{args.clips}: --pattern only applies to a folder of frames")
  # Refused before any work: an existing output.
  out = (pathlib.Path(args.out).expanduser() if args.out else
         default_out(workdir, _clips_name(args.clips), args.fold))
  if out.is_dir():
    raise PredictError(f"--out {out} is a folder; name a CSV file")
  if out.exists() and not args.overwrite:
    raise PredictError(f"{out} exists; pass --overwrite to replace it, or another --out")

  run = runs.load(workdir, epoch=args.epoch, select=args.select)
  if args.fold is not None:
    run.fold_variables(args.fold)  # an unknown fold is refused with the run's folds listed
  if is_file_clip:
    clips = file_clips(run, clips_path, onset=args.onset,
                       apex=-1 if args.apex is None else args.apex, offset=args.offset,
                       pattern=args.pattern or DEFAULT_PATTERN, crop=args.crop or "face",
                       size=DEFAULT_SIZE if args.size is None else args.size)
  else:
    clips = dataset_clips(run, args.clips, args.data_dir)
  prediction = predict(run, clips, args.fold)
  write_new(out, predictions_csv(run, clips, prediction, args.fold is not None), args.overwrite)

  lines = [f"note: {n}" for n in run.notes + clips.notes]
  state = f"epoch {run.epoch}, {run.selection} state"
  if args.fold is not None:
    lines.insert(0, f"{workdir} ({state}): the model of fold {args.fold}")
  else:
    lines.insert(0, f"{workdir} ({state}): the mean of the class probabilities of its "
                    f"{len(prediction.folds)} folds' models")
    lines.append("note: each fold's model never saw its test clips, but together they saw all of "
                 "the run's data (after LOSO: every subject of it); on clips of those people this "
                 "mean is not a test figure (the run's predictions.csv is), on new people it is an "
                 "ensemble")
  if prediction.seen_in_training is not None:
    seen = int((prediction.seen_in_training > 0).sum())
    lines.append(f"note: {seen} of {len(clips.sample_ids)} clips were in the training (or "
                 "inner-validation) data of a model used (column seen_in_training)")
  lines += [format_table(run, clips, prediction), f"wrote {out}"]
  return out, "\n".join(lines)


def main(argv=None) -> int:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow reads records only
  ap = cli.ArgumentParser(prog="python -m mejax.predict", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("clips", metavar="CLIPS",
                  help="a built dataset (name/config), a folder of frame images or a video file")
  ap.add_argument("--workdir", required=True, help="the run's workdir")
  ap.add_argument("--fold", help="one fold's model (default: the mean of every fold's model)")
  ap.add_argument("--out", help="CSV to write (default WORKDIR/predict/<clips>[.<fold>].csv)")
  ap.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  ap.add_argument("--data_dir", help="where the dataset is built (default: the run's data dir)")
  ap.add_argument("--onset", type=int, help="first frame of the clip (frame number of the file "
                  "names, or 0-based frame index of a video; default: the first)")
  ap.add_argument("--apex", type=int, help="apex frame (default: not annotated)")
  ap.add_argument("--offset", type=int, help="last frame of the clip (default: the last)")
  ap.add_argument("--pattern", help="regex matching a frame file's whole name, with a group "
                  f"(?P<n>\\d+) for its number (default {DEFAULT_PATTERN!r})")
  ap.add_argument("--crop", choices=CROPS, help="face crop of the builders: 'face' (default), "
                  "'strcn', or 'none' for frames that are already face crops")
  ap.add_argument("--size", type=int, help=f"frame size stored before the view, like a built "
                  f"dataset's (default {DEFAULT_SIZE})")
  ap.add_argument("--epoch", type=int, help="checkpoint to use (default: the newest)")
  ap.add_argument("--select", default="reported", choices=runs.SELECTIONS,
                  help="which state: the one the run reported, its final or its best")
  args = ap.parse_args(argv)
  logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
  logging.getLogger("absl").setLevel(logging.ERROR)  # orbax's notes on read-only managers
  try:
    _, text = run_prediction(args)
  except (PredictError, runs.RunError, frames_lib.ClipError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
