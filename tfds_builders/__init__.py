"""TFDS builders of mejax, one folder per dataset; importing this package registers them all."""

from tfds_builders import synthetic_me  # noqa: F401
