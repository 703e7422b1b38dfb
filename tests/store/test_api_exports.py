"""The storage interface exports every row by name, while loading a row's module only when the row is asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

import guardd.store.api as api


def test_every_name_the_interface_exports_is_found_in_the_interface():
    found = {name: getattr(api, name) for name in api.__all__}
    assert None not in found.values()
    assert found["OutboxRow"].__name__ == "OutboxRow"


def test_a_name_the_interface_does_not_export_is_an_attribute_error():
    with pytest.raises(AttributeError, match="Summ"):
        api.Summ  # noqa: B018


def test_opening_the_shared_store_for_reading_loads_no_write_path_module_or_row():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, guardd.store.postgres.backend; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    write_path = {
        "guardd.core.batch",
        "guardd.store.batch_writes",
        "guardd.store.postgres.ingest",
        "guardd.store.postgres.lease",
        "guardd.store.setaside_log",
        "guardd.store.api.rows_ingest",
        "guardd.store.api.rows_daemon",
        "guardd.store.api.rows_advice",
        "guardd.store.api.rows_remote",
        "guardd.store.api.rows_cluster",
    }
    assert write_path.isdisjoint(loaded)
