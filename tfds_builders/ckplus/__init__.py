"""`import tfds_builders.ckplus` registers the `ckplus` TFDS builder."""

from tfds_builders.ckplus.ckplus_dataset_builder import Builder

__all__ = ["Builder"]
