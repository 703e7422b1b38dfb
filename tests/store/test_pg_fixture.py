"""The PostgreSQL test fixture gives each test a database of its own."""

import psycopg


def test_each_test_gets_its_own_empty_database(pg_url, pg_server):
    assert pg_url != pg_server
    with psycopg.connect(pg_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert name.startswith("guardd_test_") and tables == 0
