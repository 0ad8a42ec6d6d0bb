"""Benchmarks and evaluation: linking, retrieval and agent replays, each writing figures to docs/."""
