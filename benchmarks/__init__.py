"""Benchmarks of the refresh at registry scale (issue 7): see benchmarks/README.md."""
