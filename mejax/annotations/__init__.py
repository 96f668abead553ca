"""Annotation parsers of the licensed datasets: plain functions returning typed records.

Every dataset module here exposes `parse(path, repair="skip") -> Parsed`, where `path` is the
dataset's annotation file (or, for datasets labelled by folder names, the folder tree) and
`repair` the policy for rows with unusable timing (`records.REPAIR_POLICIES`). The TFDS builders
in `tfds_builders/` call these; `python -m mejax.annotations DATASET PATH` prints what they parse.
"""

from __future__ import annotations

import importlib

from mejax.annotations.records import Parsed, Sample, Skip  # noqa: F401

# Dataset name -> module of mejax.annotations holding its `parse`.
PARSERS = {
    "casme": "casme",
    "casme2": "casme2",
    "casme_sq": "casme_sq",
    "smic": "smic",
    "smic_e": "smic",          # SMIC-E workbook (long clips), `parse_e`
    "samm": "samm",
    "ckplus": "ckplus",
    "mug": "mug",
    "oulu_casia": "oulu_casia",
}


def parser(dataset: str):
  """The `parse` function of a dataset (name as in PARSERS)."""
  if dataset not in PARSERS:
    raise ValueError(f"Unknown dataset {dataset!r}; annotation parsers exist for {sorted(PARSERS)}")
  module = importlib.import_module(f"mejax.annotations.{PARSERS[dataset]}")
  return module.parse_e if dataset == "smic_e" else module.parse


def parse(dataset: str, path, repair: str = "skip") -> Parsed:
  return parser(dataset)(path, repair=repair)
