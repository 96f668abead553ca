"""`import tfds_builders.casme` registers the `casme` TFDS builder."""

from tfds_builders.casme.casme_dataset_builder import Builder

__all__ = ["Builder"]
