"""Metadata in SQLite: namespaces, images, snapshots, containers, leases, content labels.

One database (<root>/meta.db, WAL, so readers never wait for a writer), one transaction per
operation (`with meta.tx() as c:`, BEGIN IMMEDIATE: two pyctr processes serialise their
writes instead of failing half-way), and a schema version with ordered migrations, so that a
newer pyctr upgrades an older root in place.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

MIGRATIONS = [
    # 1: the first schema
    """
    CREATE TABLE namespaces (name TEXT PRIMARY KEY, created INTEGER NOT NULL);
    CREATE TABLE images (
        namespace TEXT NOT NULL, name TEXT NOT NULL,
        digest TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL,
        created INTEGER NOT NULL, updated INTEGER NOT NULL,
        PRIMARY KEY (namespace, name));
    CREATE TABLE snapshots (
        key TEXT PRIMARY KEY, parent TEXT, kind TEXT NOT NULL, dir TEXT NOT NULL,
        created INTEGER NOT NULL);
    CREATE TABLE containers (
        namespace TEXT NOT NULL, id TEXT NOT NULL, image TEXT NOT NULL,
        snapshot TEXT NOT NULL, runtime TEXT NOT NULL, created INTEGER NOT NULL,
        PRIMARY KEY (namespace, id));
    """,
    # 2: snapshots per snapshotter (overlayfs, native); a container's snapshotter and spec
    # (so `tasks start` can start it again); leases; content labels
    """
    CREATE TABLE snapshots2 (
        snapshotter TEXT NOT NULL, key TEXT NOT NULL, parent TEXT, kind TEXT NOT NULL,
        dir TEXT NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (snapshotter, key));
    INSERT INTO snapshots2 SELECT 'overlayfs', key, parent, kind, dir, created FROM snapshots;
    DROP TABLE snapshots;
    ALTER TABLE snapshots2 RENAME TO snapshots;
    ALTER TABLE containers ADD COLUMN snapshotter TEXT NOT NULL DEFAULT 'overlayfs';
    ALTER TABLE containers ADD COLUMN spec TEXT;
    CREATE TABLE leases (
        namespace TEXT NOT NULL, id TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER,
        PRIMARY KEY (namespace, id));
    CREATE TABLE lease_resources (
        namespace TEXT NOT NULL, lease TEXT NOT NULL, kind TEXT NOT NULL, rid TEXT NOT NULL,
        PRIMARY KEY (namespace, lease, kind, rid),
        FOREIGN KEY (namespace, lease) REFERENCES leases ON DELETE CASCADE);
    CREATE TABLE content_labels (
        namespace TEXT NOT NULL, digest TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (namespace, digest, key));
    """,
    # 3: a container's network options (networks.Net, JSON) and hostname
    """
    ALTER TABLE containers ADD COLUMN net TEXT;
    """,
]


class Meta:
    def __init__(self, root: str) -> None:
        os.makedirs(root, 0o700, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(root, "meta.db"), timeout=30,
                                  isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self.tx() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            for i, sql in enumerate(MIGRATIONS[version:], start=version + 1):
                c.executescript_in_tx(sql)  # type: ignore[attr-defined]
                c.execute(f"PRAGMA user_version={i}")

    @contextmanager
    def tx(self) -> Iterator[_Tx]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) and committed at the end,
        rolled back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield _Tx(self.db)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def rows(self, sql: str, *args: object) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    def close(self) -> None:
        self.db.close()


class _Tx:
    """The connection inside a transaction (executescript would commit it: split instead)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, args)

    def executescript_in_tx(self, script: str) -> None:
        for stmt in script.split(";"):
            if stmt.strip():
                self.db.execute(stmt)


def now() -> int:
    return time.time_ns()
