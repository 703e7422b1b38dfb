"""The shared store's URL appears in errors and logs without its password, however the password is written."""

import pytest

from guardd.store.postgres.db import redacted


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://guardd:s3cret@db.internal/guardd", "s3cret"),
        ("postgresql://guardd:pa/ss:w0rd@db.internal:5433/guardd", "pa/ss:w0rd"),
        ("postgresql://guardd:p@ss@db.internal/guardd", "p@ss"),
        ("postgresql://guardd@db.internal/guardd?password=hunter22&sslmode=require", "hunter22"),
        ("host=db.internal user=guardd password=hunter22", "hunter22"),
    ],
    ids=["plain", "slash-and-colon", "at-sign", "query", "key-value"],
)
def test_no_piece_of_the_password_is_shown(url, secret):
    shown = redacted(url)
    assert secret not in shown and secret[:3] not in shown.replace("guardd", "")


def test_the_user_host_port_and_database_stay_readable():
    assert redacted("postgresql://guardd:pw@db.internal:5433/guardd") == "postgresql://guardd:…@db.internal:5433/guardd"
