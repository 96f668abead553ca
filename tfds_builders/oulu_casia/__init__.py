"""`import tfds_builders.oulu_casia` registers the `oulu_casia` TFDS builder."""

from tfds_builders.oulu_casia.oulu_casia_dataset_builder import Builder

__all__ = ["Builder"]
