"""Writes tfds_builders/casme_sq/dummy_data/: a tiny fake CAS(ME)^2 release.

  python -m tfds_builders.casme_sq.make_dummy_data

Two subjects (participant 1 = s15, participant 3 = s19), the coding workbook
`CAS(ME)^2code_final.xlsx` as distributed (headerless main sheet + `naming rule1` +
`naming rule2`), `cropped/<NN>/<id>/img<N>.jpg` (40 px faces) and
`selectedpic/s<NN>/<id>/img<N>.jpg` (96 px faces on 120x160 frames), with the dataset's quirks:
  * s19/happy4_1 holds a frame named `img2977.jpg.jpg` (reported in the real release);
  * s19/anger1_2 (micro) is in selectedpic but not in cropped (reported: clips missing from
    cropped) -> recorded skip in config micro;
  * s15/anger2_1 (macro) has offset 0 = not annotated -> recorded skip;
  * s19/disgust2_1 (macro) has apex 309 > offset 305 -> recorded skip.
Expected: micro 3 clips (+1 skipped), macro 2 (+2), micro_raw 4, macro_raw 2 (+2).
"""

from __future__ import annotations

import pathlib

from tfds_builders import dummy

ROOT = pathlib.Path(__file__).parent / "dummy_data"
FOLDERS = {1: "s15", 3: "s19"}
# participant, expression id, onset, apex, offset, AUs, estimated emotion, type, self-report
ROWS = [
    (1, "disgust1_3", 1201, 1204, 1207, "4+7", "negative", "micro-expression", "disgust"),
    (1, "happy1_2", 601, 603, 606, 12, "positive", "micro-expression", "happiness"),
    (3, "happy4_1", 2974, 2977, 2980, "L12", "positive", "micro-expression", "happyiness"),
    (3, "anger1_2", 800, 803, 806, "R1+R2", "others", "micro-expression", "confused"),
    (1, "anger1_1", 557, 560, 564, "4+10", "negative", "macro-expression", "anger"),
    (1, "anger2_1", 2155, 2158, 0, "NULL", "negative", "macro-expression", "anger"),
    (3, "disgust2_1", 300, 309, 305, 9, "negative", "macro-expression", "disgust"),
    (3, "happy2_1", 1000, 1003, 1006, "6+12", "positive", "macro-expression", "happiness"),
]
NOT_IN_CROPPED = {"s19/anger1_2"}
NAMING_RULE1 = [(15, "s15", 1), (16, "s16", 2), (19, "s19", 3), (20, "s20", 4)]
NAMING_RULE2 = [("0101", "disgust1"), ("0102", "disgust2"), ("0401", "anger1"),
                ("0402", "anger2"), ("0502", "happy1"), ("0503", "happy2"), ("0505", "happy3"),
                ("0507", "happy4"), ("0508", "happy5")]


def main() -> None:
  root = dummy.fresh(ROOT)
  dummy.write_xlsx(root / "CAS(ME)^2code_final.xlsx", {
      "CASFEcode_final": ROWS, "naming rule1": NAMING_RULE1, "naming rule2": NAMING_RULE2})
  for participant, expression_id, onset, apex, offset, _, emotion, _, _ in ROWS:
    subject = FOLDERS[participant]
    last = offset if offset > 0 else apex + 2  # offset 0: not annotated; frames still exist
    numbers = list(range(onset, last + 1))
    names = [f"img{n}.jpg" + (".jpg" if n == 2977 else "") for n in numbers]
    marks = dict(onset=1, apex=min(apex, last) - onset, offset=len(numbers) - 2)
    key = f"{subject}/{expression_id}"
    if key not in NOT_IN_CROPPED:
      frames = dummy.render_frames(key, emotion, len(numbers), size=40, **marks)
      dummy.write_frames(root / "cropped" / subject[1:] / expression_id, names, frames)
    frames = dummy.render_frames(key, emotion, len(numbers), size=96, canvas=(120, 160), **marks)
    dummy.write_frames(root / "selectedpic" / subject / expression_id, names, frames)


if __name__ == "__main__":
  main()
