"""Speed and scale measurements of gqa_lib, printed as ratios measured side by side.

Run ``python -m benchmarks`` (everything) or ``python -m benchmarks --quick`` (a reduced set,
a few minutes on 2 CPU cores). Results go to data/bench/ and the table in benchmarks/README.md.
"""
