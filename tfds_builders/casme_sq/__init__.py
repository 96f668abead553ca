"""`import tfds_builders.casme_sq` registers the `casme_sq` TFDS builder."""

from tfds_builders.casme_sq.casme_sq_dataset_builder import Builder

__all__ = ["Builder"]
