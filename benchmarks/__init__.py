"""Speed, memory and quality benchmarks (``python -m benchmarks.bench_solver``, ``python -m benchmarks.bench_convergence``);
measured numbers go to benchmarks/RESULTS.md with device and commit."""
