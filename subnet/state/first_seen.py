"""Who committed each image digest first.

The chain keeps only a hotkey's latest commitment, so it cannot say who published a digest first
once someone copies it. Validators remember the earliest (block, hotkey) they have evidence of
per digest; that hotkey owns the digest and any other hotkey committing it is a copy.

A claim replaces the stored owner only with strictly earlier chain evidence (a commitment block
is set by the chain at inclusion, so it cannot be forged). Equal blocks keep the stored owner;
`scan_commitments` treats a same-block tie as owned by nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from subnet.state.store import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS first_seen (
  digest TEXT PRIMARY KEY, hotkey TEXT NOT NULL, block INTEGER NOT NULL)
"""


@dataclass(frozen=True)
class Owner:
    digest: str
    hotkey: str
    block: int


class FirstSeen(Protocol):
    def claim(self, digest: str, hotkey: str, block: int) -> Owner:
        """Record `hotkey` committing `digest` at `block`; return the digest's owner."""
        ...

    def owner(self, digest: str) -> Owner | None: ...


def _earlier(block: int, current: Owner | None) -> bool:
    return current is None or block < current.block


class MemoryFirstSeen:
    """An in-process `FirstSeen` (dry runs, one-shot scans): forgets everything on exit."""

    def __init__(self) -> None:
        self._owners: dict[str, Owner] = {}

    def claim(self, digest: str, hotkey: str, block: int) -> Owner:
        current = self._owners.get(digest)
        if _earlier(block, current):
            current = self._owners[digest] = Owner(digest, hotkey, block)
        return current  # type: ignore[return-value]

    def owner(self, digest: str) -> Owner | None:
        return self._owners.get(digest)


class FirstSeenStore:
    """`FirstSeen` in the project's SQLite store (its own connection and table)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # The store's connection settings (autocommit, WAL, busy timeout): a claim runs in an
        # explicit transaction because it is read-then-write and other connections share the file.
        self._db = connect(self.path)
        self._db.execute(_SCHEMA)

    @classmethod
    def from_settings(cls, settings=None) -> "FirstSeenStore":
        from subnet.config import Settings

        return cls((settings or Settings()).store_path)

    def claim(self, digest: str, hotkey: str, block: int) -> Owner:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            current = self._select(digest)
            if _earlier(block, current):
                self._db.execute(
                    "INSERT OR REPLACE INTO first_seen (digest, hotkey, block) VALUES (?, ?, ?)",
                    (digest, hotkey, int(block)),
                )
                current = Owner(digest, hotkey, int(block))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return current  # type: ignore[return-value]

    def owner(self, digest: str) -> Owner | None:
        return self._select(digest)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "FirstSeenStore":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _select(self, digest: str) -> Owner | None:
        row = self._db.execute(
            "SELECT hotkey, block FROM first_seen WHERE digest=?", (digest,)
        ).fetchone()
        return None if row is None else Owner(digest, row[0], int(row[1]))
