"""Swapping licensed datasets for their synthetic_me stand-ins, by name (no TensorFlow).

Every licensed dataset has a stand-in config of synthetic_me shaped like it (docs/stand_ins.md,
`mejax.synthetic.corpora`), whose records carry the licensed builder's name in `dataset`. With
`config.data.stand_in = True` an experiment reads the stand-ins instead of the licensed data, so a
paper's table runs on a fresh machine; figures computed so are synthetic and labelled as such.

  stand_in_of("casme2/cropped/size=64,frame_range=whole")  -> "synthetic_me/casme2"
  stand_in_of("smic/vis_e")                                -> "synthetic_me/smic_vis"
  resolve(config.data)       -> config.data.datasets, each swapped when data.stand_in is set
  is_stand_in(spec_or_annotation) -> True for synthetic_me data (a spec or a record annotation)

A licensed spec's version and storage options (size, frame_range, crop_rule, repair) select how
the licensed clips are stored; a stand-in has one stored form, so they are dropped (the data
pipeline resizes and selects frames the same way for both).
"""

from __future__ import annotations

from typing import Any

from mejax.data import dataset_names

SYNTHETIC = "synthetic_me"

# (licensed builder, its config or None for every config) -> stand-in config of synthetic_me.
# SMIC's configs are `<camera>[_raw|_e]`, Oulu-CASIA's `<camera>_<illumination>` and
# `<camera>_cropped`; the Oulu-CASIA stand-in is one corpus (VL, strong light) for them all.
_TABLE = {
    ("casme", None): "casme",
    ("casme2", None): "casme2",
    ("casme_sq", "micro"): "casme_sq",
    ("casme_sq", "micro_raw"): "casme_sq",
    ("casme_sq", "macro"): "casme_sq_macro",
    ("casme_sq", "macro_raw"): "casme_sq_macro",
    ("samm", None): "samm",
    ("ckplus", None): "ckplus",
    ("mug", None): "mug",
    ("oulu_casia", None): "oulu_casia",
}
_SMIC_CAMERAS = {"hs": "smic_hs", "vis": "smic_vis", "nir": "smic_nir"}
_SMIC_RELEASES = ("", "_raw", "_e")
# Each builder's default config (what a spec without a config builds).
_DEFAULT_CONFIGS = {"casme_sq": "micro", "smic": "hs"}

# Every stand-in config, in the order of docs/stand_ins.md.
STAND_IN_CONFIGS = ("casme", "casme2", "casme_sq", "casme_sq_macro", "smic_hs", "smic_vis",
                    "smic_nir", "samm", "ckplus", "mug", "oulu_casia")
LICENSED_DATASETS = ("casme", "casme2", "casme_sq", "ckplus", "mug", "oulu_casia", "samm", "smic")


def _known() -> str:
  smic = ", ".join(f"smic/{camera}{release}" for camera in _SMIC_CAMERAS
                   for release in _SMIC_RELEASES)
  others = ", ".join(f"{name}/{config}" if config else name for name, config in _TABLE)
  return f"{others}, {smic} (any config of a name without one; synthetic_me/... unchanged)"


def stand_in_of(spec: str) -> str:
  """`synthetic_me/<config>` standing in for the licensed dataset `spec`; synthetic_me specs come
  back unchanged. Raises ValueError for a name without a stand-in, listing the known ones."""
  name, config, _, _ = dataset_names.parse(spec)
  if name == SYNTHETIC:
    return spec
  config = config or _DEFAULT_CONFIGS.get(name)
  if name == "smic":
    camera = (config or "").split("_")[0]
    release = (config or "")[len(camera):]
    stand_in = _SMIC_CAMERAS.get(camera) if release in _SMIC_RELEASES else None
  else:
    stand_in = _TABLE.get((name, config), _TABLE.get((name, None)))
  if stand_in is None:
    raise ValueError(f"Dataset {spec!r} has no synthetic_me stand-in; stand-ins exist for: "
                     f"{_known()}")
  return f"{SYNTHETIC}/{stand_in}"


def resolve(data: Any) -> tuple[str, ...]:
  """The dataset specs an experiment reads: `data.datasets`, each replaced by its stand-in when
  `data.stand_in` is set (default False)."""
  stand_in = data.get("stand_in", False)
  if not isinstance(stand_in, bool):
    raise ValueError(f"data.stand_in must be True or False, got {stand_in!r}")
  datasets = tuple(data["datasets"])
  if not stand_in:
    return datasets
  swapped = tuple(stand_in_of(spec) for spec in datasets)
  repeated = sorted({s for s in swapped if swapped.count(s) > 1})
  if repeated:
    raise ValueError(f"data.datasets {datasets} name the same stand-in twice ({repeated}); "
                     "with data.stand_in name each licensed dataset (and camera) once")
  return swapped


def is_stand_in(spec_or_annotation: str) -> bool:
  """True for data rendered by synthetic_me: a synthetic_me dataset spec (its stand-ins and its
  own corpora alike) or a record's `annotation` written by synthetic_me. Figures on such data
  must be labelled synthetic."""
  text = spec_or_annotation.strip()
  if text.startswith("rendered"):  # the annotation of every synthetic_me record
    return True
  try:
    name = dataset_names.parse(text)[0]
  except ValueError:
    return False
  return name == SYNTHETIC
