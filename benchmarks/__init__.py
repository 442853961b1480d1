"""Benchmarks of the energy_assets pipelines (issue 7): `python -m benchmarks run --scenario NAME`.

See BENCHMARKS.md at the repository root for the scenarios, targets, latest figures and how to run them.
"""
