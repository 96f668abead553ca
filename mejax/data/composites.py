"""Selections of a loaded ClipSet that define a composite benchmark (`config.data.selection`).

"megc2019": the MEGC2019 composite — the clips of SMIC (HS), CASME II and SAMM named by the
challenge's ground truth (`megc2019.MEGC2019_CSV`), with their labels checked against it.
Clips outside the selection are recorded in `ClipSet.dropped` with the reason.
"""

from __future__ import annotations

import logging

import numpy as np

from mejax.data import megc2019
from mejax.data.clipset import ClipSet

log = logging.getLogger(__name__)

SELECTIONS = ("", "megc2019")


def select(clips: ClipSet, selection: str) -> ClipSet:
  if selection not in SELECTIONS:
    raise ValueError(f"Unknown data.selection {selection!r}; expected one of {SELECTIONS}")
  if not selection:
    return clips
  return _megc2019(clips)


def _megc2019(clips: ClipSet) -> ClipSet:
  if tuple(clips.class_names) != megc2019.MEGC2019_CLASSES:
    raise ValueError(f"data.selection 'megc2019' needs the label map's classes to be "
                     f"{megc2019.MEGC2019_CLASSES}, got {clips.class_names} (use label_map "
                     f"'megc2019')")
  parts = sorted({megc2019.MEGC2019_DATASET_ALIASES[d] for d in set(clips.dataset.tolist())
                  if d in megc2019.MEGC2019_DATASET_ALIASES})
  if not parts:
    raise ValueError(f"data.selection 'megc2019' needs smic, casme2 or samm clips; the ClipSet "
                     f"holds {sorted(set(clips.dataset.tolist()))}")
  missing = sorted(set(megc2019.MEGC2019_DATASETS) - set(parts))
  if missing:
    log.warning("MEGC2019 composite without %s: only the %s part(s) are selected", missing, parts)
  mask = megc2019.megc2019_mask(clips, megc2019.megc2019_membership(), datasets=parts)
  outside = np.flatnonzero(~mask)
  dropped = list(clips.dropped) + [
      {"sample_id": str(clips.sample_id[i]), "dataset": str(clips.dataset[i]),
       "emotion": str(clips.emotion[i]), "reason": "not in the MEGC2019 composite"}
      for i in outside]
  log.info("MEGC2019 selection: %d clips kept, %d outside the composite", int(mask.sum()),
           len(outside))
  selected = clips.subset(mask)
  selected.dropped = dropped
  return selected
