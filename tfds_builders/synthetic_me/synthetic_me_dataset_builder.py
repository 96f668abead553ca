"""synthetic_me: the embedded procedural micro-/macro-expression dataset (see SYNTHETIC.md).

Configs:
  micro (default): 24 subjects x 10-14 clips, 3 sources (100, 60, 30 fps), 128x128 RGB,
    micro-expressions (<= 0.5 s, 0.5-2 px at apex).
  macro: 40 subjects x 5-9 clips, 2 sources (30, 25 fps), 128x128 RGB, posed onset->peak
    macro-expressions (2-4 s, 4-8 px), for macro -> micro transfer.
  megc_sized: the MEGC2019 composite's size (68 subjects, 442 clips) with the micro motion, for
    68-fold sweep benchmarks.
  micro_tiny: TEST ONLY. 6 subjects x 4-6 clips at 64x64 with the micro motion; builds in seconds.
Stand-ins of the licensed datasets (`mejax.synthetic.corpora`, docs/stand_ins.md): casme,
  casme2, casme_sq, smic_hs, smic_vis, smic_nir, samm, ckplus, mug, oulu_casia. Each is shaped
  like its real dataset (subjects, clips per subject, fps, emotion words and balance, grey or
  colour) and its records carry the real builder's name in `dataset`; `mejax.data.stand_ins`
  maps a licensed dataset spec to its stand-in.

One split, `train`, holds every clip; evaluation protocols split it later. Records follow
`mejax.data.schema` exactly and are byte-identical for a given config (fixed seed).

  tfds build tfds_builders/synthetic_me --config micro --data_dir DATA_DIR
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from mejax.data import schema
from mejax.preprocess import frames as frames_lib
from mejax.synthetic import corpora
from mejax.synthetic import generate

# Every corpus the builder offers: synthetic_me's own and the stand-ins.
_PRESETS = {**generate.PRESETS, **corpora.PRESETS}


@dataclasses.dataclass(eq=False)
class SyntheticMeConfig(tfds.core.BuilderConfig):
  synthetic: generate.SyntheticConfig = generate.PRESETS["micro"]


def _config(name: str, description: str) -> SyntheticMeConfig:
  return SyntheticMeConfig(name=name, description=description, synthetic=_PRESETS[name])


class Builder(tfds.core.GeneratorBasedBuilder):
  """Procedural faces with action-unit micro-/macro-expressions."""

  name = "synthetic_me"
  VERSION = tfds.core.Version("1.3.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release.",
      "1.1.0": "micro and micro_tiny at the calibrated difficulty 0.5 (1-4 px peaks, half the "
               "nuisance); see docs/benchmarks.md.",
      "1.2.0": "Uniform schema of the real builders: three_class, onset/apex/offset_frame, "
               "annotation.",
      "1.3.0": "Stand-ins of the licensed datasets (casme, casme2, casme_sq, smic_hs, smic_vis, "
               "smic_nir, samm, ckplus, mug, oulu_casia); micro, macro, megc_sized and "
               "micro_tiny unchanged.",
  }
  BUILDER_CONFIGS = [
      _config("micro", "24 subjects, 10-14 micro-expression clips each, 100/60/30 fps, "
                       "128x128 RGB."),
      _config("macro", "40 subjects, 5-9 posed onset->peak macro-expression clips each, "
                       "30/25 fps, 128x128 RGB."),
      _config("megc_sized", "68 subjects, 442 micro-expression clips (the MEGC2019 composite's "
                            "size), 100/60/30 fps, 128x128 RGB."),
      _config("micro_tiny", "TEST ONLY: 6 subjects, 4-6 micro clips each, 64x64 RGB."),
  ] + [_config(name, stand_in.description) for name, stand_in in corpora.STAND_INS.items()]
  DEFAULT_CONFIG_NAME = "micro"

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config.synthetic
    return self.dataset_info_from_configs(
        features=schema.clip_features(config.size, config.size, config.channels),
        homepage="https://github.com/mejax/mejax",
        description=__doc__,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download: every clip is rendered
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    config = self.builder_config.synthetic
    for sample in generate.generate_samples(config):
      sample[schema.FRAMES] = frames_lib.encode_png(sample[schema.FRAMES])
      yield sample[schema.SAMPLE_ID], sample
