"""Benchmarks (`make bench`): scripts, and what they share (reports_load)."""
