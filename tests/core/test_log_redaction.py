"""A key in a log line's context is masked whatever the context value is: text, list, mapping or any object."""

import logging

import pytest

from guardd import logs

KEY = "sk-or-v1-" + "a1b2c3d4" * 6


class Holder:
    def __str__(self) -> str:
        return f"Holder({KEY})"


@pytest.fixture(autouse=True)
def no_handlers_left():
    yield
    logging.getLogger("guardd").handlers[:] = []


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize(
    "value", [KEY, [KEY], {"key": KEY}, ("x", {"nested": [KEY]}), Holder()], ids=["str", "list", "dict", "deep", "obj"]
)
def test_a_key_in_any_context_value_is_masked(capsys, fmt, value):
    logs.setup(fmt=fmt)
    logging.getLogger("guardd.test").warning("request failed", extra={"ctx": {"detail": value}})
    line = capsys.readouterr().err
    assert "request failed" in line and KEY[-20:] not in line and "…" in line
