"""The MEGC2019 composite (SMIC-HS + CASME II + SAMM, 442 samples, 68 subjects) from annotations.

Membership and labels are defined by the challenge's ground-truth file
(`mejax.data.megc2019.MEGC2019_CSV`); the samples and their timing come from each dataset's own
annotation. `composite` matches the two and refuses any disagreement: a ground-truth row without
its annotated sample, or whose label differs from the 3-class label of the sample's emotion
(`records.three_class`). Samples of the three datasets that have a 3-class label but are not in
the composite are returned with the reason, never silently ignored (CASME II: sub04/EP12_01f, apex
`/`; sub05/EP09_05f, onset == apex).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Iterable, Sequence

import numpy as np

from mejax.data import megc2019 as ground_truth
from mejax.annotations import records


@dataclasses.dataclass
class Composite:
  rows: list[ground_truth.MembershipRow]    # ground-truth order
  samples: list[records.Sample]          # the annotated sample of each row
  left_out: list[records.Skip]           # 3-class samples of the three datasets not in it

  @property
  def labels(self) -> list[int]:
    return [row.label for row in self.rows]

  @property
  def subjects(self) -> set[tuple[str, str]]:
    return {(s.dataset, s.subject) for s in self.samples}


def _label(sample: records.Sample) -> int:
  classes = ground_truth.MEGC2019_CLASSES
  return classes.index(sample.three_class) if sample.three_class in classes else -1


def composite(samples: Iterable[records.Sample],
              membership: Sequence[ground_truth.MembershipRow] | None = None,
              datasets: Sequence[str] | None = None) -> Composite:
  """Selects the composite's samples; raises ValueError naming every row that does not match.

  samples: parsed samples of smic (HS), casme2 and samm (any order; others are ignored).
  datasets: check only these parts (e.g. ["casme2", "samm"] when SMIC is not at hand).
  """
  membership = ground_truth.megc2019_membership() if membership is None else membership
  datasets = tuple(datasets or ground_truth.MEGC2019_DATASETS)
  samples = [s for s in samples
             if ground_truth.MEGC2019_DATASET_ALIASES.get(s.dataset) in datasets]
  meta = types.SimpleNamespace(  # the clip metadata megc2019_mask reads
      dataset=np.asarray([s.dataset for s in samples], dtype=str),
      subject=np.asarray([s.subject for s in samples], dtype=str),
      label=np.asarray([_label(s) for s in samples], dtype=np.int64),
      sample_id=np.asarray([s.sample_id for s in samples], dtype=str))
  mask = ground_truth.megc2019_mask(meta, membership, datasets=datasets)
  by_key = {ground_truth.megc2019_key(ground_truth.MEGC2019_DATASET_ALIASES[s.dataset],
                                      s.subject, s.sample_id.rsplit("/", 1)[-1]): s
            for s, inside in zip(samples, mask) if inside}
  rows = [r for r in membership if r.dataset in datasets]
  chosen = [by_key[ground_truth.megc2019_key(r.dataset, r.subject, r.filename)] for r in rows]
  left_out = [records.Skip(s.dataset, s.sample_id, s.source,
                           f"3-class label {s.three_class!r} but not in the MEGC2019 composite")
              for s, inside in zip(samples, mask) if not inside and s.three_class]
  return Composite(rows, chosen, left_out)


def composite_counts(result: Composite) -> dict:
  """{dataset: [negative, positive, surprise]} and subject counts, as in the challenge's table."""
  counts = {}
  for row in result.rows:
    counts.setdefault(row.dataset, np.zeros(3, int))[row.label] += 1
  subjects = {}
  for sample in result.samples:
    subjects.setdefault(ground_truth.MEGC2019_DATASET_ALIASES[sample.dataset], set()).add(
        sample.subject)
  return {d: {"classes": c.tolist(), "subjects": len(subjects.get(d, ()))}
          for d, c in counts.items()}
