"""Benchmarks of mejax against plain-PyTorch baselines of the same models."""
