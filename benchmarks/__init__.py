"""The benchmarks: scripts that measure edgenas rather than being part of it.

Run one as ``python -m benchmarks NAME [ARGS]`` from the repository root (``python -m
benchmarks`` lists them). They import `edgenas`; neither the package nor its tests under
``tests/`` import them (tests/test_architecture.py checks both). Their own tests are in
``benchmarks/tests/``.
"""
