"""The wire: a store in another process, spoken to over newline-delimited JSON-RPC 2.0.

The kit's side (`WireStore`, `StoreCommand`), the server that exposes any Python
store (`serve_store`), the method table both sides share, and the named errors of a
broken conversation. The protocol is specified in `docs/PROTOCOL.md`. Nothing here
imports pytest or Hypothesis, or anything from `conformance.kit` (a test enforces
it). Import the public names from `conformance`; the modules here are private.
"""
