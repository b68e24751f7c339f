"""Login benchmarks: ``python -m bench.login --help`` (results in docs/performance.md)."""
