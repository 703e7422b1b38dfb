"""The C builder of the PostgreSQL COPY text (guardd/store/postgres/_copytext.c) gives byte for byte what the Python
reference gives, for any keys, instances, times, series, costs and hour entries; it is built and used by default
(under CI a build without it fails), and ``GUARDD_NO_C_PARSE=1`` or an install without it use the Python builder."""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardd.core.batch import Parsed
from guardd.store.postgres import copytext
from guardd.store.postgres.copytext import c_copy_text, copy_text, py_copy_text, py_rollup_text, rollup_text

# Text that COPY must escape, the key kinds' prefixes and anything else (non-ASCII, other control characters).
TEXT = st.text(alphabet=st.one_of(st.sampled_from("\\\t\n\r:ghs"), st.characters(exclude_categories=["Cs"])))
KEYS = st.one_of(
    st.tuples(st.sampled_from(["g:", "s:", "h:", "l:", "g", "s", "é:", ""]), TEXT).map("".join),
    st.sampled_from(["g:same", "h:same", "h:", "h", "", "g:"]),  # repeated keys: rows with one hash keep their order
)
INTS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**40, -(10**40)]),
    st.integers(),
    st.booleans(),  # an int subclass: printed as an f-string prints it
)
ROWS = st.lists(st.tuples(KEYS, INTS, INTS, st.one_of(st.none(), INTS), INTS, INTS, INTS, INTS), max_size=40)
ENTRIES = st.one_of(st.just([0] * 7), st.lists(st.one_of(st.just(0), INTS), min_size=7, max_size=7))
HOURS = st.dictionaries(st.tuples(INTS, INTS), ENTRIES, max_size=30)


@pytest.fixture(scope="module")
def c_builder() -> ModuleType:
    if copytext._copytext is None:
        pytest.skip("the C builder of the COPY text is not built (under CI=true this fails: CI must test it)")
    return copytext._copytext


@settings(max_examples=400, deadline=None)
@given(rows=ROWS, instance=TEXT)
def test_the_c_builder_writes_the_events_lines_the_python_one_writes(c_builder, rows, instance):
    assert c_builder.copy_text(rows, instance) == py_copy_text(rows, instance)


@settings(max_examples=300, deadline=None)
@given(hours=HOURS)
def test_the_c_builder_writes_the_rollup_lines_the_python_one_writes(c_builder, hours):
    assert c_builder.rollup_text(hours) == py_rollup_text(hours)


def test_a_batch_large_enough_to_be_built_without_the_gil_is_the_same(c_builder):
    rows = [
        (f"{'gsh'[i % 3]}:k{i}\t{i % 7}", i, -i, None if i % 5 == 0 else i * 10**9, 0, 0, 0, 0) for i in range(9000)
    ]
    rows += rows[:100]  # repeated keys among many
    assert c_builder.copy_text(iter(rows), "host\\1") == py_copy_text(rows, "host\\1")


def test_rows_from_a_generator_of_lists_are_read_as_tuples_are(c_builder):
    rows = [["g:a", 1, 2, 3, 0, 0, 0, 0], ["h:b", 4, 5, None, 0, 0, 0, 0]]
    assert c_builder.copy_text(iter(rows), "h") == py_copy_text(rows, "h")


def test_a_key_that_utf8_cannot_hold_is_refused_by_both(c_builder):
    rows = [("g:\ud800", 1, 2, 3, 0, 0, 0, 0)]
    with pytest.raises(UnicodeEncodeError):
        py_copy_text(rows, "h")
    with pytest.raises(UnicodeEncodeError):
        c_builder.copy_text(rows, "h")


def test_no_rows_make_no_text_whatever_the_instance(c_builder):
    assert c_builder.copy_text([], "\ud800") == py_copy_text([], "\ud800") == b""


def test_a_row_without_its_eight_fields_is_refused_by_both(c_builder):
    rows = [("g:a", 1, 2, 3, 0, 0, 0)]
    with pytest.raises(ValueError):
        py_copy_text(rows, "h")
    with pytest.raises(ValueError):
        c_builder.copy_text(rows, "h")


def test_the_c_builder_is_used_by_default(monkeypatch, c_builder):
    monkeypatch.delenv("GUARDD_NO_C_PARSE", raising=False)
    monkeypatch.setattr(copytext, "py_copy_text", None)  # a call to the Python builder would fail
    monkeypatch.setattr(copytext, "py_rollup_text", None)
    assert c_copy_text() and copy_text([("g:a", 1, 2, 3, 0, 0, 0, 0)], "h").endswith(b"\tg:a\t1\t2\t3e-12\th\n")
    assert rollup_text({(1, 2): [3, 1, 0, 0, 0, 0, 0]}) == b"1\t2\t3\t1\t0\t0\t0\t0\t0\n"


def test_guardd_no_c_parse_forces_the_python_builder(monkeypatch):
    monkeypatch.setenv("GUARDD_NO_C_PARSE", "1")
    monkeypatch.setattr(copytext, "_copytext", None)  # a call to the C builder would fail
    assert not c_copy_text() and copy_text([("g:a", 1, 2, None, 0, 0, 0, 0)], "h").endswith(b"\t\\N\th\n")


def test_an_install_without_the_extension_builds_the_text_in_python():
    code = (
        "import sys; sys.modules['guardd.store.postgres._copytext'] = None\n"  # what importing a module not built does
        "from guardd.store.postgres.copytext import c_copy_text, copy_text, rollup_text\n"
        "print(c_copy_text(), copy_text([('g:a', 1, 2, 3, 0, 0, 0, 0)], 'h').count(b'\\n'), rollup_text({}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GUARDD_NO_C_PARSE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["False", "1", "b''"], done.stderr


def test_a_batch_unpacked_from_a_worker_gives_the_text_of_the_batch_itself(c_builder):
    # The rows of an unpacked batch come from zip(), which reuses its tuple when no one holds it: the C builder holds
    # every row until its text is made.
    batch = Parsed(0, 0)
    for i in range(3000):
        batch.add(
            (f"{'gh'[i % 2]}:k{i}", 1790000000000 + i, i % 7, None if i % 3 else i, 1, 2, 3, 4), (f"k{i}", 1, 2, 3, 4)
        )
    batch.close()
    unpacked = Parsed.unpack(batch.pack())
    assert c_builder.copy_text(unpacked.row_iter(), "host-0") == py_copy_text(batch.row_iter(), "host-0")
