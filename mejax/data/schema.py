"""The TFRecord schema every mejax builder writes and `mejax.data.clipset` reads.

One record = one clip. Frame indices (onset/apex/offset) are relative to the stored frames;
`source_frames` keeps the frame numbers of the original dataset so results can be traced back.
Labels are not fixed here: the fine emotion, AUs and objective class are stored, and the label
map of the experiment (`mejax.data.labels`) turns them into classes at load time.
"""

from __future__ import annotations

# Names shared by builders (writers) and the ClipSet loader (reader).
SAMPLE_ID = "sample_id"          # unique within a dataset, e.g. "sub01/EP02_01f"
DATASET = "dataset"              # dataset name, e.g. "casme2", "synthetic_me"
SUBJECT = "subject"              # subject as the dataset names it, e.g. "sub01", "s3", "006"
EMOTION = "emotion"              # fine emotion, lower case, e.g. "happiness", "repression", "others"
THREE_CLASS = "three_class"      # MEGC 3-class label "negative"/"positive"/"surprise"; "" undefined
ACTION_UNITS = "action_units"    # FACS string as coded, e.g. "4+L10" ("" when unknown)
OBJECTIVE_CLASS = "objective_class"  # Davison et al. 2018 objective class 1..7, 0 when unknown
FPS = "fps"
ONSET = "onset"                  # index into `frames`
APEX = "apex"                    # index into `frames`; -1 when not annotated (e.g. SMIC)
OFFSET = "offset"                # index into `frames`
SOURCE_FRAMES = "source_frames"  # original frame number of each stored frame
# The annotated onset/apex/offset as original frame numbers (-1 when not annotated).
ONSET_FRAME = "onset_frame"
APEX_FRAME = "apex_frame"
OFFSET_FRAME = "offset_frame"
ANNOTATION = "annotation"        # where the record came from: "<file> row <n>" or the label folder
FRAMES = "frames"                # uint8 video (T, H, W, C)

METADATA_KEYS = (SAMPLE_ID, DATASET, SUBJECT, EMOTION, THREE_CLASS, ACTION_UNITS, OBJECTIVE_CLASS,
                 FPS, ONSET, APEX, OFFSET, ONSET_FRAME, APEX_FRAME, OFFSET_FRAME, ANNOTATION)


def clip_features(height: int | None, width: int | None, channels: int = 3):
  """tfds FeaturesDict of one clip; frames are stored as a PNG-encoded video."""
  import tensorflow as tf  # builders only: reading a built dataset back goes through tfds too
  import tensorflow_datasets as tfds

  return tfds.features.FeaturesDict({
      SAMPLE_ID: tfds.features.Text(),
      DATASET: tfds.features.Text(),
      SUBJECT: tfds.features.Text(),
      EMOTION: tfds.features.Text(),
      THREE_CLASS: tfds.features.Text(),
      ACTION_UNITS: tfds.features.Text(),
      OBJECTIVE_CLASS: tfds.features.Scalar(dtype=tf.int32),
      FPS: tfds.features.Scalar(dtype=tf.float32),
      ONSET: tfds.features.Scalar(dtype=tf.int32),
      APEX: tfds.features.Scalar(dtype=tf.int32),
      OFFSET: tfds.features.Scalar(dtype=tf.int32),
      SOURCE_FRAMES: tfds.features.Sequence(tfds.features.Scalar(dtype=tf.int32)),
      ONSET_FRAME: tfds.features.Scalar(dtype=tf.int32),
      APEX_FRAME: tfds.features.Scalar(dtype=tf.int32),
      OFFSET_FRAME: tfds.features.Scalar(dtype=tf.int32),
      ANNOTATION: tfds.features.Text(),
      FRAMES: tfds.features.Video(shape=(None, height, width, channels), encoding_format="png"),
  })
