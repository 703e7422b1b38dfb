"""The shared PostgreSQL store (contract §9): the same interface as the SQLite store
(:mod:`guardd.store.api`), for many guardd instances sharing one database.

- :mod:`.db` opens a connection pool, migrates the schema forward and translates psycopg errors to guardd's;
- :mod:`.schema` holds the migrations;
- :mod:`.events` stores usage events and sums windows from hour and day rollups; :mod:`.ingest` is its write
  path (COPY into a staging table, then set-based statements under the writers' lock; events unique by a 64-bit
  key hash);
- :mod:`.state` holds alert state, the outbox, overrides, silences, history, the switch document and markers.

Money is exact ``numeric`` dollars in the database (the contract asks for it, and a person querying the tables
reads dollars); Python keeps integer pico-dollars, converted exactly at this boundary.
"""
