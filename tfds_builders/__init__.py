"""TFDS builders of mejax, one folder per dataset; importing this package registers them all."""

from tfds_builders import casme  # noqa: F401
from tfds_builders import casme2  # noqa: F401
from tfds_builders import casme_sq  # noqa: F401
from tfds_builders import ckplus  # noqa: F401
from tfds_builders import mug  # noqa: F401
from tfds_builders import oulu_casia  # noqa: F401
from tfds_builders import samm  # noqa: F401
from tfds_builders import smic  # noqa: F401
from tfds_builders import synthetic_me  # noqa: F401
