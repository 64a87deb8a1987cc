"""The distributed backend's system of record: Postgres through psycopg, with the repositories' shared SQL."""
