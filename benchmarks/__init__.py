"""minidocker's benchmark suite (`make bench`): every figure next to Docker's and runc's,
measured in the same run. The driver is run_bench.py; stats.py holds the pure helpers
(tests/test_bench_stats.py tests them without root); one module per section."""
