"""`import tfds_builders.smic` registers the `smic` TFDS builder."""

from tfds_builders.smic.smic_dataset_builder import Builder

__all__ = ["Builder"]
