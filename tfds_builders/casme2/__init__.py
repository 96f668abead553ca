"""`import tfds_builders.casme2` registers the `casme2` TFDS builder."""

from tfds_builders.casme2.casme2_dataset_builder import Builder

__all__ = ["Builder"]
