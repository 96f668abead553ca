"""Label maps: fine emotion (as stored by the builders) -> class index of an experiment.

The label map is part of the experiment config; builders store the original fine emotion, AUs and
objective class, never a fixed class. A sample whose emotion a map leaves out is dropped at load
time, and the drop is counted and logged by `mejax.data.clipset`.

`config.data.label_map` is the name of a map of `LABEL_MAPS` (the class sets of the papers mejax
reproduces, and common ones) or an inline map, a mapping such as

  {"classes": ("positive", "negative", "surprise"),
   "emotions": {"happiness": "positive", "disgust": "negative", "surprise": "surprise"},
   "datasets": {"smic": {"positive": "positive", "negative": "negative", "surprise": "surprise"}},
   "name": "my_three_classes"}

`emotions` maps the words the builders store (`STORED_EMOTIONS`) to classes; a dataset named in
the optional `datasets` uses its own table instead of `emotions`; other words are dropped. The
optional `name` names the map in logs. `get_label_map` takes either form; `check_spec` checks one.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Mapping

from mejax.annotations import casme
from mejax.annotations import casme2
from mejax.annotations import casme_sq
from mejax.annotations import ckplus
from mejax.annotations import mug
from mejax.annotations import oulu_casia
from mejax.annotations import samm
from mejax.annotations import smic
from mejax.synthetic import generate as synthetic


@dataclasses.dataclass(frozen=True)
class LabelMap:
  name: str
  class_names: tuple[str, ...]
  # Returns a class index, or None to drop the sample. Arguments: emotion, objective class,
  # dataset and, optionally, the sample id (only `reddy2019` reads it: CAS(ME)^2's clips are
  # named after the video that elicited them).
  assign: Callable[..., int | None]
  description: str
  # What identifies the map, JSON-able (view caches key on it): a named map's name, an inline
  # map's normalised mapping. Defaults to the name.
  spec: str | dict = ""

  def __post_init__(self):
    if not self.spec:
      object.__setattr__(self, "spec", self.name)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


# The emotion words each dataset's builder stores (lower case), keyed by the dataset name the
# records carry; taken from the parsers' own constants. Inline maps may name only these words.
STORED_EMOTIONS: Mapping[str, tuple[str, ...]] = {
    casme.DATASET: tuple(sorted(casme.EMOTIONS)),
    casme2.DATASET: tuple(sorted(casme2.EMOTIONS)),
    casme_sq.DATASET: tuple(sorted(casme_sq.EMOTIONS)),
    ckplus.DATASET: tuple(sorted(ckplus.EMOTIONS)),
    mug.DATASET: tuple(sorted(mug.EMOTIONS)),
    oulu_casia.DATASET: tuple(sorted(oulu_casia.EMOTIONS)),
    samm.DATASET: tuple(sorted(samm.EMOTIONS)),
    smic.DATASET: tuple(sorted(smic.CLASSES)),
    synthetic.DATASET_NAME: tuple(sorted({t.emotion for t in synthetic.EXPRESSION_TYPES})),
}
ALL_STORED_EMOTIONS = tuple(sorted({w for words in STORED_EMOTIONS.values() for w in words}))


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


def _megc2019(emotion: str, objective_class: int, dataset: str,
              sample_id: str = "") -> int | None:
  del objective_class, dataset, sample_id
  return _MEGC2019.get(_normalise(emotion))


def _islam2022(emotion: str, objective_class: int, dataset: str,
               sample_id: str = "") -> int | None:
  del sample_id
  # SMIC has no AU coding, so its 3-class folder label stands; other ME datasets use the objective
  # class when the builder stored one, macro datasets their emotion.
  if objective_class > 0 and not dataset.startswith("smic"):
    return _OBJECTIVE_TO_SEED.get(objective_class)
  return _SEED_EMOTIONS.get(_normalise(emotion))


# Reddy et al. 2019: CAS(ME)^2 names each clip after the video that elicited it (`s15/anger1_1`);
# the kind of video is the class. Other datasets by emotion word.
_REDDY_CLASSES = ("happy", "angry", "disgust")
_REDDY_VIDEO_KINDS = {"happy": 0, "anger": 1, "disgust": 2}
_REDDY_EMOTIONS = {"happiness": 0, "anger": 1, "disgust": 2}


def _reddy2019(emotion: str, objective_class: int, dataset: str,
               sample_id: str = "") -> int | None:
  del objective_class
  if _normalise(dataset) != casme_sq.DATASET:
    return _REDDY_EMOTIONS.get(_normalise(emotion))
  if not sample_id:
    # Without the clip name the class is unknowable; guessing from the emotion would mislabel.
    raise ValueError("label map 'reddy2019' takes a CAS(ME)^2 clip's class from the video named "
                     "in its sample id ('s15/anger1_1' -> angry), and the caller passed none")
  video = sample_id.rsplit("/", 1)[-1].rsplit("_", 1)[0]
  return _REDDY_VIDEO_KINDS.get(video.rstrip("0123456789"))


# ---- inline maps -------------------------------------------------------------------------------
_SPEC_KEYS = ("classes", "emotions", "datasets", "name")
INLINE_NAME = "inline"  # the name of an inline map that gives none


def _plain(value: Any) -> Any:
  """A ConfigDict / FrozenConfigDict as plain dicts; anything else unchanged."""
  return value.to_dict() if hasattr(value, "to_dict") else value


def _checked_classes(value: Any) -> tuple[str, ...]:
  example = "e.g. ['negative', 'positive', 'surprise']"
  if value is None:
    raise ValueError(f"label_map has no 'classes'; expected a list of class names, {example}")
  if not isinstance(value, (list, tuple)):
    raise ValueError(f"label_map.classes must be a list of class names, {example}; got {value!r}")
  if not value:
    raise ValueError(f"label_map.classes is empty; expected a list of class names, {example}")
  bad = [c for c in value if not isinstance(c, str) or not c.strip()]
  if bad:
    raise ValueError(f"label_map.classes must be non-empty texts; got {bad}")
  classes = tuple(c.strip() for c in value)
  repeated = sorted(c for c, n in collections.Counter(classes).items() if n > 1)
  if repeated:
    raise ValueError(f"label_map.classes names {repeated} more than once; name each class once")
  return classes


def _checked_table(key: str, table: Any, classes: tuple[str, ...], vocabulary: tuple[str, ...],
                   stores: str) -> dict[str, str]:
  """{word: class} of one table, words lower case and sorted; `stores` names the vocabulary's
  owner in the error for unknown words."""
  table = _plain(table)
  if not isinstance(table, Mapping):
    raise ValueError(f"{key} must map emotion words to classes, e.g. "
                     f"{{'happiness': {classes[0]!r}}}; got {table!r}")
  checked: dict[str, str] = {}
  for word, cls in table.items():
    if not isinstance(word, str):
      raise ValueError(f"{key}: emotion words are texts; got {word!r}")
    if cls not in classes:
      raise ValueError(f"{key} maps {word!r} to {cls!r}, which is not one of label_map.classes "
                       f"{list(classes)}")
    normal = _normalise(word)
    if checked.get(normal, cls) != cls:
      raise ValueError(f"{key} maps {normal!r} to both {checked[normal]!r} and {cls!r}")
    checked[normal] = cls
  unknown = sorted(set(checked) - set(vocabulary))
  if unknown:
    raise ValueError(f"{key}: unknown emotion word(s) {unknown}; {stores}: "
                     f"{', '.join(vocabulary)}")
  return dict(sorted(checked.items()))


def normalise_spec(spec: Any) -> dict:
  """The checked, normalised (JSON-able) form of an inline map: classes a list, words and dataset
  names lower case, tables sorted. ValueError, one line naming the key, for each mistake."""
  spec = _plain(spec)
  if not isinstance(spec, Mapping):
    raise ValueError(f"label_map must be a label map name ({', '.join(sorted(LABEL_MAPS))}) or "
                     f"a mapping with 'classes' and 'emotions'; got {spec!r}")
  unknown = sorted(str(k) for k in set(spec) - set(_SPEC_KEYS))
  if unknown:
    raise ValueError(f"label_map has unknown key(s) {unknown}; an inline label map has "
                     "'classes', 'emotions' and optionally 'datasets' and 'name'")
  classes = _checked_classes(spec.get("classes"))
  emotions = _checked_table("label_map.emotions", spec.get("emotions") or {}, classes,
                            ALL_STORED_EMOTIONS, "the datasets store")
  tables = _plain(spec.get("datasets") or {})
  if not isinstance(tables, Mapping):
    raise ValueError("label_map.datasets must map dataset names to {word: class} tables, e.g. "
                     f"{{'smic': {{'positive': {classes[0]!r}}}}}; got {tables!r}")
  names = {_normalise(str(d)): d for d in tables}
  unknown = sorted(set(names) - set(STORED_EMOTIONS))
  if unknown:
    raise ValueError(f"label_map.datasets: unknown dataset(s) {unknown}; datasets are "
                     f"{', '.join(sorted(STORED_EMOTIONS))}")
  datasets = {d: _checked_table(f"label_map.datasets.{d}", tables[names[d]], classes,
                                STORED_EMOTIONS[d], f"{d} stores") for d in sorted(names)}
  if not emotions and not any(datasets.values()):
    raise ValueError("label_map maps no emotion to a class; give label_map.emotions, e.g. "
                     f"{{'happiness': {classes[0]!r}}}")
  normal: dict[str, Any] = {"classes": list(classes), "emotions": emotions}
  if datasets:
    normal["datasets"] = datasets
  name = spec.get("name")
  if name is not None:
    if not isinstance(name, str) or not name.strip():
      raise ValueError(f"label_map.name must be a non-empty text; got {name!r}")
    normal["name"] = name.strip()
  return normal


def _table_assign(classes: tuple[str, ...], emotions: Mapping[str, str],
                  datasets: Mapping[str, Mapping[str, str]]) -> Callable[..., int | None]:
  index = {c: i for i, c in enumerate(classes)}
  default = {word: index[c] for word, c in emotions.items()}
  own = {d: {word: index[c] for word, c in table.items()} for d, table in datasets.items()}

  def assign(emotion: str, objective_class: int, dataset: str,
             sample_id: str = "") -> int | None:
    del objective_class, sample_id
    return own.get(_normalise(dataset), default).get(_normalise(emotion))
  return assign


def _describe(classes: tuple[str, ...], emotions: Mapping[str, str],
              datasets: Mapping[str, Mapping[str, str]]) -> str:
  def table(words: Mapping[str, str]) -> str:
    return "; ".join(f"{c} = {', '.join(w for w, k in words.items() if k == c) or '(none)'}"
                     for c in classes)
  parts = [table(emotions)] if emotions else []
  parts += [f"{d} instead: {table(words)}" for d, words in datasets.items()]
  return " | ".join(parts) + " | other words dropped"


def _inline(spec: Any) -> LabelMap:
  normal = normalise_spec(spec)
  classes, emotions = tuple(normal["classes"]), normal["emotions"]
  datasets = normal.get("datasets", {})
  return LabelMap(normal.get("name", INLINE_NAME), classes,
                  _table_assign(classes, emotions, datasets),
                  _describe(classes, emotions, datasets), spec=normal)


def _named_table(name: str, note: str, spec: dict) -> LabelMap:
  """A named map written as an inline one (so it is checked like one); its spec is its name."""
  lmap = _inline(dict(spec, name=name))
  return dataclasses.replace(lmap, description=f"{note} Map: {lmap.description}", spec=name)


LABEL_MAPS: dict[str, LabelMap] = {
    "megc2019": LabelMap(
        "megc2019", THREE_CLASSES, _megc2019,
        "negative = repression, anger, contempt, disgust, fear, sadness; positive = happiness; "
        "surprise = surprise; others dropped"),
    "islam2022": LabelMap(
        "islam2022", THREE_CLASSES, _islam2022,
        "objective classes III-V -> negative, I -> positive, II -> surprise (SMIC and macro data by "
        "emotion: anger, disgust, sadness -> negative); others dropped"),
    "reddy2019": LabelMap(
        "reddy2019", _REDDY_CLASSES, _reddy2019,
        "Reddy et al. 2019, CAS(ME)^2 (Table IV: happy 94, angry 76, disgust 36). These classes "
        "cannot be derived from the emotion CAS(ME)^2 stores (negative/positive/surprise/others; "
        "its 'negative' clips come from anger and disgust videos alike). They are the three kinds "
        "of video that elicited the clips (anger1-2, disgust1-2, happy1-5), which name each clip "
        "('s15/anger1_1'): a CAS(ME)^2 clip's class is its video's kind, whatever its estimated "
        "emotion, so the map needs the sample id. The paper's selection (clips over 96 frames) "
        "is not reproduced. Other datasets by emotion: happiness -> happy, anger -> angry, "
        "disgust -> disgust; the rest (SMIC included: the paper's SMIC classes are megc2019's) "
        "dropped"),
}
LABEL_MAPS.update((name, _named_table(name, note, spec)) for name, note, spec in (
    ("talluri2022",
     "Talluri et al. 2022 (Table 1): happiness, disgust and surprise of CASME II and SAMM. SMIC "
     "stores only positive/negative/surprise; Table 1 puts its 51 positive clips in the Happy row "
     "and its 70 negative clips in the Disgust row, so SMIC's positive -> happiness and "
     "negative -> disgust, and cross-dataset scenarios (SMIC -> SAMM, ...) share one class "
     "tuple.",
     {"classes": ("happiness", "disgust", "surprise"),
      "emotions": {"happiness": "happiness", "disgust": "disgust", "surprise": "surprise"},
      "datasets": {"smic": {"positive": "happiness", "negative": "disgust",
                            "surprise": "surprise"}}}),
    ("xia2019",
     "Xia et al. 2019 (STRCN, IV-B): happiness -> positive; disgust, sadness, fear, contempt, "
     "anger -> negative; surprise; tense and repression -> other, with CASME II's 'others' and "
     "SAMM's 'other' (the paper keeps all CASME II and SAMM clips); SMIC's 3 classes 1:1.",
     {"classes": ("positive", "negative", "surprise", "other"),
      "emotions": {"happiness": "positive", "positive": "positive",
                   "anger": "negative", "contempt": "negative", "disgust": "negative",
                   "fear": "negative", "sadness": "negative", "negative": "negative",
                   "surprise": "surprise",
                   "repression": "other", "tense": "other", "others": "other", "other": "other"}}),
    ("le2020",
     "Le et al. 2020 (IV-A): CASME II's 5 classes (happiness, disgust, repression, surprise, "
     "others; its fear and sadness clips are dropped) with disgust + repression -> negative; "
     "SAMM's anger, disgust, fear, sadness -> negative, contempt + other -> others; SMIC's 3 "
     "classes 1:1.",
     {"classes": ("positive", "negative", "surprise", "others"),
      "emotions": {"happiness": "positive", "positive": "positive",
                   "anger": "negative", "disgust": "negative", "fear": "negative",
                   "sadness": "negative", "repression": "negative", "negative": "negative",
                   "surprise": "surprise",
                   "contempt": "others", "other": "others", "others": "others"},
      "datasets": {"casme2": {"happiness": "positive", "disgust": "negative",
                              "repression": "negative", "surprise": "surprise",
                              "others": "others"}}}),
    ("casme2_5class",
     "The 5-class CASME II set (Yan et al. 2014): fear and sadness dropped; other datasets' "
     "identical words map alike.",
     {"classes": ("happiness", "disgust", "repression", "surprise", "others"),
      "emotions": {w: w for w in ("happiness", "disgust", "repression", "surprise", "others")}}),
    ("samm_5class",
     "The 5-class SAMM set of most SAMM papers (the emotions with over 10 clips): disgust, fear "
     "and sadness dropped; other datasets' identical words map alike.",
     {"classes": ("anger", "contempt", "happiness", "surprise", "other"),
      "emotions": {w: w for w in ("anger", "contempt", "happiness", "surprise", "other")}}),
))


def get_label_map(spec: str | Mapping) -> LabelMap:
  """The label map `config.data.label_map` names (a key of LABEL_MAPS) or spells out inline (a
  mapping, ConfigDict or JSON dict; see the module docstring)."""
  if isinstance(spec, str):
    if spec not in LABEL_MAPS:
      raise ValueError(f"Unknown label map {spec!r}; known label maps: {sorted(LABEL_MAPS)}, or "
                       "an inline mapping with 'classes' and 'emotions'")
    return LABEL_MAPS[spec]
  return _inline(spec)


def check_spec(spec: Any) -> None:
  """Raises the ValueError `get_label_map` would for `config.data.label_map`; config checks call
  it so that a bad map fails before any data is read."""
  get_label_map(spec)
