"""mejax: micro-expression recognition in JAX/Flax (docs/ and the README say how to use it)."""

import logging

# jax probes for a TPU at start-up and logs its absence at INFO on every machine without one.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
