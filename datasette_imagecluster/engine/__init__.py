"""The numeric core: exact hierarchical clustering of fingerprints and capture times, on arrays alone.

numpy and scipy only, never a database, Datasette or a deep-learning
framework, as scipy's ``cluster.hierarchy``: :mod:`.clustering` is the entry
point. Derivations and proofs: ``docs/engine.md``.
"""
