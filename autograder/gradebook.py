"""A new nbgrader gradebook, made without nbgrader's ``alembic`` subprocess.

nbgrader 0.9.6 creates a new gradebook's tables in process, but stamps its schema
version by running the ``alembic heads`` command in a subprocess, which costs seconds
once per new database (once per grading run here, and its PATH must find the
command). ``create`` makes the same database: nbgrader's tables, and the
``alembic_version`` row holding the head revision of nbgrader's own migration scripts,
read in process with alembic's ``ScriptDirectory``. Opening it afterwards, nbgrader
finds an existing database and skips its subprocess; ``nbgrader db upgrade`` sees the
version it expects. It leaves out migrating an existing database (``nbgrader db upgrade``).
"""
from __future__ import annotations

import functools

from sqlalchemy import create_engine, inspect, text


@functools.cache
def schema_version() -> str:
    """The head revision of nbgrader's migration scripts (what ``alembic heads`` prints)."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


def create(db_url: str) -> None:
    """Create the gradebook at ``db_url`` with nbgrader's schema, if it has no tables yet."""
    from nbgrader.api import Base

    engine = create_engine(db_url, future=True)
    try:
        with engine.begin() as connection:
            if inspect(connection).get_table_names():
                return
            Base.metadata.create_all(bind=connection)
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                               {"v": schema_version()})
    finally:
        engine.dispose()
