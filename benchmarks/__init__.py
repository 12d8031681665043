"""Load benchmarks, reported as ratios against a direct call to the fake upstream."""
