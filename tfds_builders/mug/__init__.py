"""`import tfds_builders.mug` registers the `mug` TFDS builder."""

from tfds_builders.mug.mug_dataset_builder import Builder

__all__ = ["Builder"]
