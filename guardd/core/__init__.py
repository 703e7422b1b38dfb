"""The pure domain core of guardd: plain functions over dataclasses.

Nothing in this package performs I/O, reads the clock or touches asyncio; ``now`` is always a parameter.
A test (tests/core/test_purity.py) proves the package imports only the standard library and itself.
"""
