"""Scratch PostgreSQL schemas for benchmarks and tests: created fresh, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

__all__ = ["scratch_schema"]


@contextmanager
def scratch_schema(database_url: str | None, *, prefix: str = "scratch") -> Iterator[str | None]:
    """Yield a URL whose connections work in a new schema of `database_url`'s PostgreSQL
    database, and drop the schema (with everything in it) on the way out.  Any other URL
    (SQLite), or None (the default SQLite file of a data directory), is yielded unchanged: its
    database is already a throwaway file."""
    if database_url is None or not database_url.startswith("postgresql"):
        yield database_url
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in database_url else "?"
        try:
            yield f"{database_url}{separator}options=-csearch_path%3D{schema}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
