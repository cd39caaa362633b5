"""An embedded chain in one SQLite file, for dry runs and the single-machine miner/validator loop.

It keeps what the validator reads from a real subnet (registered hotkeys and uids, the latest
commitment per hotkey with its block, weights written) and enforces the same rules that matter to
callers: only registered hotkeys commit or set weights, a commitment is at most 128 bytes, and
weights respect a rate limit in blocks. Every write is one block.

Like subtensor, a subnet comes into being with its owner: the owner's hotkey is its first neuron
(`do_register_network` appends it, then records it as `SubnetOwnerHotkey`; opentensor/subtensor,
pallets/subtensor/src/subnets/subnet.rs). So on a fresh devchain the owner holds uid 0 and every
miner and validator registers after it. The owner's devchain identity, `subnet-owner`, has no `/`:
no `--wallet.name`/`--wallet.hotkey` pair can sign as it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Mapping

from subnet.chain.base import ChainError, Neuron, NotRegistered, RawCommitment, Standing, WeightsRateLimited, WeightsReceipt

MAX_COMMITMENT_BYTES = 128
SUBNET_OWNER = "subnet-owner"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS neurons (
  netuid INTEGER NOT NULL, uid INTEGER NOT NULL, hotkey TEXT NOT NULL,
  validator_permit INTEGER NOT NULL DEFAULT 0, last_update INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (netuid, uid), UNIQUE (netuid, hotkey));
CREATE TABLE IF NOT EXISTS commitments (
  netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, block INTEGER NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (netuid, hotkey));
CREATE TABLE IF NOT EXISTS stakes (
  netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, stake REAL NOT NULL, PRIMARY KEY (netuid, hotkey));
CREATE TABLE IF NOT EXISTS owners (netuid INTEGER PRIMARY KEY, hotkey TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS weights (
  netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, block INTEGER NOT NULL,
  version_key INTEGER NOT NULL, weights TEXT NOT NULL);
"""


class DevChain:
    """A `Chain` adapter over a local SQLite file, acting as `hotkey`."""

    network = "devchain"

    def __init__(self, path: str | Path, hotkey: str = "", weights_rate_limit: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._hotkey = hotkey
        self.weights_rate_limit = weights_rate_limit
        # Chain calls are blocking I/O for real adapters, so callers run them in worker threads;
        # they never overlap, so one connection shared across threads is safe.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('block', 1)")

    @property
    def hotkey(self) -> str:
        return self._hotkey

    def as_hotkey(self, hotkey: str) -> "DevChain":
        """The same chain file, signing as another hotkey."""
        return DevChain(self.path, hotkey, self.weights_rate_limit)

    def close(self) -> None:
        self._db.close()

    # -- reads ---------------------------------------------------------------------------------
    def current_block(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key='block'").fetchone()[0])

    def network_id(self) -> str:
        """The devchain is its file: two files are two chains."""
        return f"devchain:{self.path.resolve()}"

    def standing(self, netuid: int) -> Standing:
        row = self._db.execute(
            "SELECT uid, validator_permit FROM neurons WHERE netuid=? AND hotkey=?", (netuid, self._hotkey)
        ).fetchone()
        stake = self._db.execute(
            "SELECT stake FROM stakes WHERE netuid=? AND hotkey=?", (netuid, self._hotkey)
        ).fetchone()
        return Standing(
            uid=None if row is None else int(row[0]),
            validator_permit=bool(row and row[1]),
            stake=float(stake[0]) if stake else 0.0,
            min_stake=float(self._param("min_stake")),
            weights_version_key=self._param("weights_version_key"),
            commit_reveal=False,
        )

    def weights_row(self, netuid: int) -> dict[int, float] | None:
        return self.last_weights(netuid)

    def neurons(self, netuid: int) -> list[Neuron]:
        rows = self._db.execute(
            "SELECT uid, hotkey, validator_permit, last_update FROM neurons WHERE netuid=? ORDER BY uid",
            (netuid,),
        ).fetchall()
        return [Neuron(uid, hk, bool(permit), last) for uid, hk, permit, last in rows]

    def subnet_owner(self, netuid: int) -> str | None:
        row = self._db.execute("SELECT hotkey FROM owners WHERE netuid=?", (netuid,)).fetchone()
        return None if row is None else str(row[0])

    def commitments(self, netuid: int) -> list[RawCommitment]:
        rows = self._db.execute(
            "SELECT c.hotkey, n.uid, c.block, c.data FROM commitments c "
            "LEFT JOIN neurons n ON n.netuid=c.netuid AND n.hotkey=c.hotkey "
            "WHERE c.netuid=? ORDER BY c.block, c.hotkey",
            (netuid,),
        ).fetchall()
        return [RawCommitment(hk, uid, block, bytes(data)) for hk, uid, block, data in rows]

    def last_weights(self, netuid: int, hotkey: str | None = None) -> dict[int, float] | None:
        row = self._db.execute(
            "SELECT weights FROM weights WHERE netuid=? AND hotkey=? ORDER BY rowid DESC LIMIT 1",
            (netuid, hotkey or self._hotkey),
        ).fetchone()
        return None if row is None else {int(k): v for k, v in json.loads(row[0]).items()}

    # -- writes --------------------------------------------------------------------------------
    def set_param(self, name: str, value: int) -> None:
        """Subnet-wide parameters the validator checks: `weights_version_key`, `min_stake`."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, int(value)))

    def set_stake(self, netuid: int, hotkey: str, stake: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO stakes VALUES (?, ?, ?)", (netuid, hotkey, float(stake)))

    def register(self, netuid: int, hotkey: str, validator_permit: bool = False) -> int:
        """Register `hotkey` on `netuid` (idempotent; a permit asked for is granted); returns its uid.

        The first registration on a netuid creates the subnet, its owner first (uid 0)."""
        self._ensure_owner(netuid)
        row = self._db.execute(
            "SELECT uid FROM neurons WHERE netuid=? AND hotkey=?", (netuid, hotkey)
        ).fetchone()
        if row:
            if validator_permit:
                self._db.execute("UPDATE neurons SET validator_permit=1 WHERE netuid=? AND uid=?", (netuid, row[0]))
            return int(row[0])
        return self._append_neuron(netuid, hotkey, validator_permit)

    def _append_neuron(self, netuid: int, hotkey: str, validator_permit: bool = False) -> int:
        uid = self._db.execute(
            "SELECT COALESCE(MAX(uid) + 1, 0) FROM neurons WHERE netuid=?", (netuid,)
        ).fetchone()[0]
        self._db.execute(
            "INSERT INTO neurons VALUES (?, ?, ?, ?, 0)", (netuid, uid, hotkey, int(validator_permit))
        )
        self._advance()
        return int(uid)

    def _ensure_owner(self, netuid: int) -> None:
        """The subnet's owner, registered before anyone else (uid 0 on a new subnet; on a file from
        before owners existed, the next free uid, so no miner is ever taken for the owner)."""
        if self.subnet_owner(netuid) is not None:
            return
        row = self._db.execute("SELECT 1 FROM neurons WHERE netuid=? AND hotkey=?", (netuid, SUBNET_OWNER)).fetchone()
        if row is None:
            self._append_neuron(netuid, SUBNET_OWNER)
        self._db.execute("INSERT INTO owners VALUES (?, ?)", (netuid, SUBNET_OWNER))

    def commit(self, netuid: int, data: bytes) -> int:
        self._require_registered(netuid)
        if len(data) > MAX_COMMITMENT_BYTES:
            raise ValueError(f"commitment is {len(data)} bytes; the chain takes at most {MAX_COMMITMENT_BYTES}")
        block = self._advance()
        self._db.execute(
            "INSERT OR REPLACE INTO commitments VALUES (?, ?, ?, ?)", (netuid, self._hotkey, block, data)
        )
        return block

    def set_weights(self, netuid: int, weights: Mapping[int, float], version_key: int) -> WeightsReceipt:
        uid = self._require_registered(netuid)
        required = self._param("weights_version_key")
        if version_key < required:
            raise ChainError(f"version_key {version_key} is older than the subnet's {required} (IncorrectWeightVersionKey)")
        last = self._db.execute(
            "SELECT last_update FROM neurons WHERE netuid=? AND uid=?", (netuid, uid)
        ).fetchone()[0]
        waited = self.current_block() - last
        if last and waited < self.weights_rate_limit:
            raise WeightsRateLimited(
                f"weights set {waited} blocks ago; the limit is {self.weights_rate_limit}",
                retry_in_blocks=self.weights_rate_limit - waited,
            )
        block = self._advance()
        payload = json.dumps({str(k): float(v) for k, v in sorted(weights.items())})
        self._db.execute(
            "INSERT INTO weights VALUES (?, ?, ?, ?, ?)", (netuid, self._hotkey, block, version_key, payload)
        )
        self._db.execute("UPDATE neurons SET last_update=? WHERE netuid=? AND uid=?", (block, netuid, uid))
        return WeightsReceipt("set", block)

    def advance(self, blocks: int = 1) -> int:
        """Let `blocks` empty blocks pass (tests and rate-limit waits)."""
        for _ in range(blocks):
            self._advance()
        return self.current_block()

    def _param(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _advance(self) -> int:
        self._db.execute("UPDATE meta SET value = value + 1 WHERE key='block'")
        return self.current_block()

    def _require_registered(self, netuid: int) -> int:
        row = self._db.execute(
            "SELECT uid FROM neurons WHERE netuid=? AND hotkey=?", (netuid, self._hotkey)
        ).fetchone()
        if row is None:
            raise NotRegistered(f"hotkey {self._hotkey!r} is not registered on netuid {netuid}")
        return int(row[0])
