"""The research harness (benchmarks, the hypotheses, helpers), importable as a package.

Run a tool as ``python -m tools.<name>`` from the repository root; tools import each other
as ``from tools.<name> import ...`` and tests as ``from tools import <name>``.
"""
