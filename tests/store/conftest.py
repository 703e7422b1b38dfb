"""Fixtures of the store tests."""

from __future__ import annotations

import pytest

from guardd.store.postgres.copytext import c_copy_text


@pytest.fixture(params=["c", "python"])
def copy_builder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once with each builder of the PostgreSQL COPY text (:mod:`guardd.store.postgres.copytext`):
    the C one (skipped when it is not built, which fails under CI=true) and the Python reference."""
    if request.param == "python":
        monkeypatch.setenv("GUARDD_NO_C_PARSE", "1")
    else:
        monkeypatch.delenv("GUARDD_NO_C_PARSE", raising=False)
        if not c_copy_text():
            pytest.skip("the C builder of the COPY text is not built (under CI=true this fails: CI must test it)")
    return str(request.param)
