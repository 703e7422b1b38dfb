"""The state layer: the storage interface (:mod:`guardd.store.api`) and its two backends — the only place with SQL."""
