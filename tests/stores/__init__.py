"""Correct stores written for the kit's own tests (built unlike the reference store)."""
