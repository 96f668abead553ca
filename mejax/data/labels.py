"""Label maps: fine emotion (as stored by the builders) -> class index of an experiment.

The label map is part of the experiment config; builders store the original fine emotion, AUs and
objective class, never a fixed class. A sample whose emotion a map leaves out is dropped at load
time, and the drop is counted and logged by `mejax.data.clipset`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping


@dataclasses.dataclass(frozen=True)
class LabelMap:
  name: str
  class_names: tuple[str, ...]
  # Returns a class index, or None to drop the sample. Arguments: emotion, objective class, dataset.
  assign: Callable[[str, int, str], int | None]
  description: str

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


THREE_CLASSES = ("negative", "positive", "surprise")

_MEGC2019 = {
    "repression": 0, "anger": 0, "contempt": 0, "disgust": 0, "fear": 0, "sadness": 0,
    "negative": 0,  # SMIC folders are already 3-class
    "happiness": 1, "positive": 1,
    "surprise": 2,
}

# Islam et al.: anger, disgust, sadness -> negative (macro datasets and the objective classes).
_SEED_EMOTIONS = {"anger": 0, "disgust": 0, "sadness": 0, "negative": 0,
                  "happiness": 1, "positive": 1, "surprise": 2}
# Objective classes (Davison et al. 2018): I happiness, II surprise, III anger, IV disgust,
# V sadness, VI fear, VII others.
_OBJECTIVE_TO_SEED = {1: 1, 2: 2, 3: 0, 4: 0, 5: 0}


def _normalise(emotion: str) -> str:
  return emotion.strip().lower()


def _megc2019(emotion: str, objective_class: int, dataset: str) -> int | None:
  del objective_class, dataset
  return _MEGC2019.get(_normalise(emotion))


def _islam2022(emotion: str, objective_class: int, dataset: str) -> int | None:
  # SMIC has no AU coding, so its 3-class folder label stands; other ME datasets use the objective
  # class when the builder stored one, macro datasets their emotion.
  if objective_class > 0 and not dataset.startswith("smic"):
    return _OBJECTIVE_TO_SEED.get(objective_class)
  return _SEED_EMOTIONS.get(_normalise(emotion))


LABEL_MAPS: Mapping[str, LabelMap] = {
    "megc2019": LabelMap(
        "megc2019", THREE_CLASSES, _megc2019,
        "negative = repression, anger, contempt, disgust, fear, sadness; positive = happiness; "
        "surprise = surprise; others dropped"),
    "islam2022": LabelMap(
        "islam2022", THREE_CLASSES, _islam2022,
        "objective classes III-V -> negative, I -> positive, II -> surprise (SMIC and macro data by "
        "emotion: anger, disgust, sadness -> negative); others dropped"),
}


def get_label_map(name: str) -> LabelMap:
  if name not in LABEL_MAPS:
    raise ValueError(f"Unknown label map {name!r}; known label maps: {sorted(LABEL_MAPS)}")
  return LABEL_MAPS[name]
