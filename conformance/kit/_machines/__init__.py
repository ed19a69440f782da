"""The kit's Hypothesis state machines, each checking a store against a model of its own."""
