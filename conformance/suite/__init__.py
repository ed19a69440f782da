"""The contract suite as a test package: `pytest --pyargs conformance.suite` runs it.

The store comes from `--store TARGET` or from a `store` fixture in your conftest.py.
"""
