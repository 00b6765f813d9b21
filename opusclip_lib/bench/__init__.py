"""Benchmarks run as ``opusclip bench NAME``: side-by-side ratios in one run, not timed tests."""
