"""The kit: what only tests import.

The pytest plugin, the per-test runner, the report, the rule registry, the spec
renderer, the scenario builders, the contract tests and the Hypothesis state
machines. Import the public names (`StoreContract`, `rule`, `RULES`, ...) from
`conformance`; the modules here are private.
"""
