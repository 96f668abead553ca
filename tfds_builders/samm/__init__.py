"""`import tfds_builders.samm` registers the `samm` TFDS builder."""

from tfds_builders.samm.samm_dataset_builder import Builder

__all__ = ["Builder"]
