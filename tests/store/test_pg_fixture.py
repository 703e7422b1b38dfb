"""The PostgreSQL test fixture gives each test a schema of its own."""

import psycopg


def test_each_test_gets_its_own_empty_schema_first_on_the_search_path(pg_url):
    with psycopg.connect(pg_url) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        conn.execute("CREATE TABLE mine (x int)")
        tables = conn.execute("SELECT schemaname FROM pg_tables WHERE tablename = 'mine'").fetchall()
    assert schema.startswith("guardd_test_") and tables == [(schema,)]
