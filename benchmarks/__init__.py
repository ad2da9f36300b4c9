"""fastbp's asv suite: timings kept per commit (see docs/user_guide/benchmark_history.rst)."""
