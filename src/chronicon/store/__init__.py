"""SQLite storage: the only package that writes SQL.

`Store` is one connection to one database file, migrated on open. Each concern keeps its
queries in its own module (analyses, jobs, agent records) as a mixin, so the schema has one
owner and every query sits beside its table's migration.
"""

from __future__ import annotations

from .database import Database


class Store(Database):
    """The application's store. Mixins add their queries here as their modules land."""


__all__ = ["Store", "Database"]
