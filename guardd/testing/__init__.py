"""Test helpers shipped with guardd (need the ``test`` extra)."""
