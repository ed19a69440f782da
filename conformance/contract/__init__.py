"""The contract: what a backend imports in production.

Errors, models and their serde JSON codec, queries, pages and cursors, the pure
helpers, and the store base classes with the seed's default methods. Nothing here
imports pytest or Hypothesis (a test enforces it), or anything from `conformance.kit`.
Import the public names from `conformance`; the modules here are private.
"""
