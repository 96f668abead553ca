"""Damaged data files: a damaged view cache is reported and rebuilt (or named when it cannot be),
a damaged TFRecord dataset raises one line naming it with the commands that rebuild it.

Every fault is injected into a copy of the tiny dataset, never into the session's own files.
"""

import json
import logging
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from mejax import sweep
from mejax.data import clipset as clipset_lib
from mejax.data import view_cache
from test_train import tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATASET = "synthetic_me/micro_tiny"


@pytest.fixture(scope="module")
def reference(tiny_data_dir, tmp_path_factory):
  """(data dir with the TFRecords and a good view cache, the inputs sweep.prepare returned)."""
  data_dir = tmp_path_factory.mktemp("faults") / "data"
  shutil.copytree(tiny_data_dir, data_dir, ignore=shutil.ignore_patterns("mejax_views"))
  config = tiny_config(str(data_dir))
  exp = sweep.prepare(config)
  assert view_cache.cache_path(config.data).exists()
  return data_dir, exp


def _copy(reference, tmp_path, views_only=False):
  """A copy of the reference data dir (only its mejax_views/ with `views_only`): (config, cache
  path)."""
  source, _ = reference
  data_dir = tmp_path / "data"
  if views_only:
    shutil.copytree(source / "mejax_views", data_dir / "mejax_views")
  else:
    shutil.copytree(source, data_dir)
  config = tiny_config(str(data_dir))
  return config, view_cache.cache_path(config.data)


# ---- the view cache ------------------------------------------------------------------------------

def _cut(fraction=None, size=None):
  """The file cut to a fraction of its size or to `size` bytes."""
  def damage(path, config):
    data = path.read_bytes()
    path.write_bytes(data[:size if size is not None else int(len(data) * fraction)])
  return damage


def _garble(where):
  """Overwrites 64 bytes at a fraction of the file (0.5: the view's data, whose CRC then fails;
  0.999: the zip's central directory)."""
  def damage(path, config):
    data = bytearray(path.read_bytes())
    start = min(int(len(data) * where), len(data) - 64)
    data[start:start + 64] = bytes(255 - b for b in data[start:start + 64])
    path.write_bytes(bytes(data))
  return damage


def _flip_one_view_byte(path, config):
  """One byte of the view's data changed: only the zip's CRC-32 tells."""
  with zipfile.ZipFile(path) as z:
    info = z.getinfo("view.npy")
  data = bytearray(path.read_bytes())
  data_start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
  data[data_start + info.file_size - 10] ^= 0xFF
  path.write_bytes(bytes(data))


def _rewrite(**changes):
  """The same npz written again with arrays changed (None: left out)."""
  def damage(path, config):
    with np.load(path) as z:
      arrays = {k: z[k] for k in z.files}
    for key, change in changes.items():
      if change is None:
        del arrays[key]
      else:
        arrays[key] = change(arrays[key])
    np.savez(path, **arrays)
  return damage


def _meta(edit):
  return _rewrite(meta=lambda meta: np.asarray(json.dumps(edit(json.loads(str(meta))))))


CACHE_FAULTS = {
    "empty": (_cut(0), "EOFError"),
    "cut_to_100_bytes": (_cut(size=100), "damaged"),
    "cut_in_half": (_cut(0.5), "damaged"),
    "garbled_view_data": (_garble(0.5), "CRC"),
    "garbled_local_header": (_garble(0.0), "damaged"),
    "garbled_central_directory": (_garble(0.999), "damaged"),
    "one_view_byte_flipped": (_flip_one_view_byte, "Bad CRC-32"),
    "label_array_missing": (_rewrite(label=None), "['label'] are missing"),
    "meta_missing": (_rewrite(meta=None), "['meta'] are missing"),
    "view_of_wrong_shape": (_rewrite(view=lambda v: v[:, :, :8, :8]), "its view is uint8"),
    "view_of_wrong_dtype": (_rewrite(view=lambda v: v.astype(np.float32)), "its view is float32"),
    "label_too_short": (_rewrite(label=lambda a: a[:-1]), "'label' has 29 values"),
    "subject_as_2d": (_rewrite(subject=lambda a: a[:, None]), "array 'subject'"),
    "fps_as_text": (_rewrite(fps=lambda a: a.astype(str)), "array 'fps'"),
    "labels_out_of_range": (_rewrite(label=lambda a: a + 100), "labels lie outside"),
    "view_of_no_clips": (_rewrite(view=lambda v: v[:0]), "has 30 values for the view's 0"),
    "meta_garbage": (_rewrite(meta=lambda m: np.asarray("{garbage")), "meta is not JSON"),
    "meta_not_an_object": (_meta(lambda meta: [1, 2]), "meta is a list"),
    "meta_lacks_class_names": (_meta(lambda meta: {k: v for k, v in meta.items()
                                                   if k != "class_names"}), "['class_names']"),
    "meta_of_wrong_types": (_meta(lambda meta: {**meta, "dataset_info": []}), "['dataset_info']"),
    "meta_of_another_format": (_meta(lambda meta: {**meta, "format": 1}), "cache format 1"),
    "a_folder": (lambda path, config: (path.unlink(), path.mkdir()), "IsADirectoryError"),
}


@pytest.mark.parametrize("fault", list(CACHE_FAULTS))
def test_a_damaged_view_cache_is_reported_and_rebuilt(fault, reference, tmp_path, caplog):
  damage, reason = CACHE_FAULTS[fault]
  config, path = _copy(reference, tmp_path)
  damage(path, config)
  with caplog.at_level(logging.WARNING, logger="mejax.data.view_cache"):
    exp = sweep.prepare(config)
  warnings = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING and r.name.startswith("mejax")]
  assert str(path) in warnings[0] and reason in warnings[0], warnings[0]
  assert "rebuilding it" in warnings[0]
  _, good = reference
  np.testing.assert_array_equal(exp.inputs, good.inputs)
  np.testing.assert_array_equal(exp.clips.uid, good.clips.uid)
  np.testing.assert_array_equal(exp.clips.label, good.clips.label)
  if fault == "a_folder":  # the folder in its place cannot be replaced: a warning says so
    assert len(warnings) == 2 and warnings[1].startswith(f"Could not write the view cache {path}")
    return
  assert len(warnings) == 1, warnings
  # Rewritten whole: it reads back (numpy alone) as the undamaged cache did.
  caplog.clear()
  cached = view_cache.load(path, config.data)
  assert cached is not None and not [r for r in caplog.records if r.name.startswith("mejax")]
  np.testing.assert_array_equal(cached[1], good.inputs)
  assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("fault", ["empty", "one_view_byte_flipped", "label_too_short",
                                   "meta_garbage"])
def test_a_damaged_view_cache_without_tfrecords_is_named(fault, reference, tmp_path):
  """Only mejax_views/ was copied (a GPU machine): nothing to rebuild from."""
  damage, reason = CACHE_FAULTS[fault]
  config, path = _copy(reference, tmp_path, views_only=True)
  damage(path, config)
  with pytest.raises(view_cache.ViewCacheError) as raised:
    sweep.prepare(config)
  message = str(raised.value)
  assert "\n" not in message
  assert f"The view cache {path} is unusable (damaged" in message and reason in message
  assert f"are not in {config.data.data_dir}" in message
  assert f"Copy {path} again" in message and "python -m mejax.prepare --config" in message


def test_a_damaged_view_cache_without_tensorflow_is_named(reference, tmp_path, monkeypatch):
  config, path = _copy(reference, tmp_path)
  _cut(0.5)(path, config)
  monkeypatch.setattr(view_cache, "_tensorflow_installed", lambda: False)
  with pytest.raises(view_cache.ViewCacheError, match="TensorFlow.*is not installed") as raised:
    sweep.prepare(config)
  assert str(path) in str(raised.value) and "Copy" in str(raised.value)
  # No cache at all: the same, saying there is none.
  path.unlink()
  no_cache = f"there is no view cache {re.escape(str(path))}"
  with pytest.raises(view_cache.ViewCacheError, match=no_cache):
    sweep.prepare(config)


def test_an_interrupted_cache_write_leaves_the_old_file(reference, tmp_path, monkeypatch):
  config, path = _copy(reference, tmp_path)
  before = path.read_bytes()
  _, good = reference

  def fail(*args, **kwargs):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(np, "savez", fail)
  with pytest.raises(OSError):
    view_cache.save(path, good.clips, good.inputs, config.data)
  assert path.read_bytes() == before
  assert not list(path.parent.glob("*.tmp"))


# ---- the TFRecords -------------------------------------------------------------------------------

def _version_dir(data_dir):
  import tfds_builders.synthetic_me as synthetic_me  # the version the builder writes
  return pathlib.Path(data_dir, DATASET, str(synthetic_me.Builder.VERSION))


def _shard(data_dir):
  (shard,) = _version_dir(data_dir).glob("*.tfrecord-*")
  return shard


def _cut_shard(fraction):
  def damage(data_dir):
    shard = _shard(data_dir)
    data = shard.read_bytes()
    shard.write_bytes(data[:int(len(data) * fraction)])
  return damage


def _garble_shard(data_dir):
  shard = _shard(data_dir)
  data = bytearray(shard.read_bytes())
  middle = len(data) // 2
  data[middle:middle + 64] = bytes(255 - b for b in data[middle:middle + 64])
  shard.write_bytes(bytes(data))


def _garbage_png(data_dir):
  """A record whose checksums hold but whose second frame is no PNG."""
  import tensorflow as tf
  shard = _shard(data_dir)
  records = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
  example = tf.train.Example.FromString(records[3])
  example.features.feature["frames"].bytes_list.value[1] = b"not a png"
  records[3] = example.SerializeToString()
  with tf.io.TFRecordWriter(str(shard)) as writer:
    for record in records:
      writer.write(record)


def _edit_info(edit):
  def damage(data_dir):
    info = _version_dir(data_dir) / "dataset_info.json"
    edit(info)
  return damage


TFRECORD_FAULTS = {
    "shard_cut_in_half": (_cut_shard(0.5), "truncated record", True),
    "shard_empty": (_cut_shard(0), "holds 0 of its 30 records", True),
    "shard_garbled": (_garble_shard, "corrupted record", True),
    "shard_missing": (lambda d: _shard(d).unlink(), "is missing", True),
    "frames_not_png": (_garbage_png, "does not decode (InvalidArgumentError: Unknown image", False),
    "info_garbage": (_edit_info(lambda p: p.write_text("garbage{")), "Failed to load JSON", False),
    "info_cut_in_half": (_edit_info(lambda p: p.write_text(p.read_text()[:200])),
                         "Failed to load JSON", False),
    "info_missing": (_edit_info(lambda p: p.unlink()), "has no dataset_info.json", False),
}


def _assert_names_the_damage(message, data_dir, reason, names_shard):
  version_dir = _version_dir(data_dir)
  assert "\n" not in message
  assert message.startswith(f"Dataset '{DATASET}' in '{data_dir}' is damaged: "), message
  assert reason in message, message
  if names_shard:
    assert f"shard {_shard_path(data_dir)}" in message, message
  assert f"Rebuild it: delete {version_dir} (`rm -r {version_dir}`), then run " \
         f"`python -m mejax.prepare {DATASET} --data_dir {data_dir}`" in message, message


def _shard_path(data_dir):
  return _version_dir(data_dir) / "synthetic_me-train.tfrecord-00000-of-00001"


@pytest.mark.parametrize("fault", list(TFRECORD_FAULTS))
def test_a_damaged_dataset_is_named_with_the_commands_that_rebuild_it(fault, reference, tmp_path):
  import tensorflow_datasets as tfds

  damage, reason, names_shard = TFRECORD_FAULTS[fault]
  source, good = reference
  data_dir = tmp_path / "data"
  shutil.copytree(source, data_dir, ignore=shutil.ignore_patterns("mejax_views"))
  damage(data_dir)
  config = tiny_config(str(data_dir))
  with pytest.raises(clipset_lib.DatasetDamaged) as raised:
    sweep.prepare(config)  # no view cache: training reads the TFRecords
  _assert_names_the_damage(str(raised.value), data_dir, reason, names_shard)
  assert isinstance(raised.value, ValueError)  # the command-line tools print it as one line
  # Following the advice recovers (prepare's build, here in-process).
  shutil.rmtree(_version_dir(data_dir))
  tfds.builder(DATASET, data_dir=str(data_dir)).download_and_prepare()
  np.testing.assert_array_equal(sweep.prepare(config).inputs, good.inputs)


def test_the_rebuild_advice_works_as_printed(reference, tmp_path):
  """The command of the message, run as a user would: prepare rebuilds the deleted version."""
  source, good = reference
  data_dir = tmp_path / "data"
  shutil.copytree(source, data_dir, ignore=shutil.ignore_patterns("mejax_views"))
  _cut_shard(0.5)(data_dir)
  with pytest.raises(clipset_lib.DatasetDamaged) as raised:
    clipset_lib.load([DATASET], str(data_dir), "megc2019")
  delete, command = re.search(r"\(`rm -r (.+?)`\), then run `(.+?)`", str(raised.value)).groups()
  shutil.rmtree(shlex.split(delete)[0])
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  argv = shlex.split(command)
  assert argv[:3] == ["python", "-m", "mejax.prepare"]
  proc = subprocess.run([sys.executable] + argv[1:], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  clips = clipset_lib.load([DATASET], str(data_dir), "megc2019")
  np.testing.assert_array_equal(clips.uid, good.clips.uid)


def test_harmless_damage_is_ignored(reference, tmp_path):
  """features.json is not read back (the builder's code defines the features)."""
  source, good = reference
  data_dir = tmp_path / "data"
  shutil.copytree(source, data_dir, ignore=shutil.ignore_patterns("mejax_views"))
  (_version_dir(data_dir) / "features.json").write_text("garbage")
  clips = clipset_lib.load([DATASET], str(data_dir), "megc2019")
  np.testing.assert_array_equal(clips.uid, good.clips.uid)
