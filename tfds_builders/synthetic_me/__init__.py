"""`import tfds_builders.synthetic_me` registers the `synthetic_me` TFDS builder."""

from tfds_builders.synthetic_me.synthetic_me_dataset_builder import Builder

__all__ = ["Builder"]
