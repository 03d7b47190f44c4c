"""Benchmarks of the course: training-step speed against PyTorch, gradient-check cost,
notebook run times and grading throughput. Instructor tools, run from the repository
root (``python -m benchmarks``); nothing here is imported by the notebooks."""
