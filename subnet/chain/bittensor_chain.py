"""The `Chain` port on the bittensor 11 SDK (`bt.Subtensor` in blocking mode).

Calls used (checked against bittensor 11.3.0):
- reads: `sub.block`; `sub.subnets.metagraph(netuid, commitments=False)` (uids, hotkeys,
  validator permits, last_update); `sub.subnets.commitments(netuid)` (hotkey → NeuronCommitment
  with `.uid`, `.block`, `.fields`); `sub.identity.commitment(netuid, hotkey)`; `sub.at()`
  snapshot queries of `SubtensorModule.Uids`, `WeightsSetRateLimit` and `LastUpdate` for the
  weights preflight; `ValidatorPermit`, `TotalHotkeyAlpha`, `StakeThreshold`, `WeightsVersionKey`
  and `CommitRevealWeightsEnabled` for the validator's standing; `System.BlockHash[0]` (the
  genesis hash) as the network's identity; `SubtensorModule.Weights` to confirm a reveal;
  `SubtensorModule.SubnetOwnerHotkey` for the burn target (the owner's uid, never an assumed 0).
- commit: `sub.submit_call(bt.calls.Commitments.set_commitment(netuid=..., info={"fields":
  [{"Raw<n>": data}]}), wallet, signer="hotkey")` — one Raw field, signed by the hotkey.
- weights: `sub.execute(bt.SetWeights(netuid=..., weights={uid: w}, version_key=...), wallet)`;
  the SDK clips, u16-quantises and picks `set_mechanism_weights` or the timelocked commit.

SDK failures become the port's errors. A dropped connection is retried on a fresh client with
bounded exponential backoff, then reported as `ChainUnavailable`; nothing here lets an SDK or
transport exception escape to the validator loop.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, TypeVar

import bittensor as bt
from bittensor.settings import resolve_endpoint

from subnet.chain.base import (
    ChainError,
    ChainUnavailable,
    Neuron,
    NotRegistered,
    RawCommitment,
    Standing,
    WeightsRateLimited,
    WeightsReceipt,
)
from subnet.protocol.commitment import MAX_COMMITMENT_BYTES

log = logging.getLogger("subnet.chain")

T = TypeVar("T")

_SubtensorModule = bt.storage.SubtensorModule

# What a dropped or unreachable endpoint looks like coming out of the SDK: its own connection
# errors, and raw socket/timeout errors (a submit wraps these in a ChainError `from` them).
_CONNECTION_TYPES: tuple[type[BaseException], ...] = (
    bt.RpcConnectionError,
    bt.ConnectionNotReady,
    ConnectionError,
    TimeoutError,
    OSError,
)
try:  # websockets is the SDK's transport; its close errors are not OSErrors.
    from websockets.exceptions import ConnectionClosed

    _CONNECTION_TYPES += (ConnectionClosed,)
except ImportError:  # pragma: no cover
    pass

_RETRY_IN = re.compile(r"retry in ~?(\d+) blocks?", re.IGNORECASE)


@dataclass(frozen=True)
class Backoff:
    """Reconnect schedule: `attempts` tries in all, sleeping base·factor^i (capped) in between."""

    attempts: int = 4
    base: float = 0.5
    factor: float = 2.0
    cap: float = 8.0

    def delays(self) -> Iterator[float]:
        for i in range(max(0, self.attempts - 1)):
            yield min(self.cap, self.base * self.factor**i)


class BittensorChain:
    """A `Chain` adapter bound to one wallet's hotkey on a bittensor network."""

    def __init__(
        self,
        network: str,
        wallet: Any,
        *,
        substrate: Any = None,
        backoff: Backoff = Backoff(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`wallet` is a `bt.Wallet` (or any SDK wallet shape); `substrate` replaces the RPC
        backend with any implementation of the SDK's `Substrate` protocol (tests, local twins)."""
        try:
            resolve_endpoint(network)
        except ValueError:
            raise ChainError(
                f"unknown network {network!r}: use devchain, finney, test, local, archive, devnet or a ws:// URL"
            ) from None
        self.network = network
        self.wallet = wallet
        self._substrate = substrate
        self._backoff = backoff
        self._sleep = sleep
        self._sub: bt.Subtensor | None = None

    # -- identity ------------------------------------------------------------------------------
    @property
    def hotkey(self) -> str:
        """The hotkey's ss58 address, read from the public key file (never unlocks anything)."""
        try:
            return bt.public_view(self.wallet, "hotkey").ss58_address
        except Exception as exc:  # noqa: BLE001 - any keyfile problem is the same error to the operator
            name = getattr(self.wallet, "name", "?")
            hotkey = getattr(self.wallet, "hotkey_str", "?")
            path = getattr(self.wallet, "path", "?")
            raise ChainError(
                f"wallet {name}/{hotkey} has no readable hotkey under {path} ({type(exc).__name__}); "
                f"create it with `btcli wallet new-hotkey -w {name} -H {hotkey}`"
            ) from None

    # -- reads ---------------------------------------------------------------------------------
    def current_block(self) -> int:
        return self._run("read the current block", lambda sub: int(sub.block))

    def network_id(self) -> str:
        """The genesis hash: the same chain under any endpoint name, never two chains mixed up."""
        genesis = self._run("read the genesis hash", lambda sub: sub.query(bt.storage.System.BlockHash, [0]))
        text = genesis if isinstance(genesis, str) else ("0x" + bytes(genesis).hex() if genesis else "")
        if not text or int(text, 16) == 0:
            raise ChainError(f"{self.network}: the node returned no genesis hash")
        return text.lower()

    def standing(self, netuid: int) -> Standing:
        hotkey = self.hotkey

        def read(sub: bt.Subtensor) -> Standing:
            snap = sub.at()
            uid = snap.query(_SubtensorModule.Uids, [netuid, hotkey])
            permits = snap.query(_SubtensorModule.ValidatorPermit, [netuid]) or []
            stake = snap.query(_SubtensorModule.TotalHotkeyAlpha, [hotkey, netuid])
            return Standing(
                uid=None if uid is None else int(uid),
                validator_permit=uid is not None and int(uid) < len(permits) and bool(permits[int(uid)]),
                stake=_tokens(stake),
                min_stake=_tokens(snap.query(_SubtensorModule.StakeThreshold, [])),
                weights_version_key=int(snap.query(_SubtensorModule.WeightsVersionKey, [netuid]) or 0),
                commit_reveal=bool(snap.query(_SubtensorModule.CommitRevealWeightsEnabled, [netuid])),
            )

        return self._run(f"read this hotkey's standing on netuid {netuid}", read)

    def weights_row(self, netuid: int) -> dict[int, float] | None:
        hotkey = self.hotkey

        def read(sub: bt.Subtensor) -> dict[int, float] | None:
            snap = sub.at()
            uid = snap.query(_SubtensorModule.Uids, [netuid, hotkey])
            if uid is None:
                return None
            row = snap.query(_SubtensorModule.Weights, [netuid, int(uid)]) or []
            total = sum(int(v) for _, v in row)
            return {int(u): int(v) / total for u, v in row} if total else None

        return self._run(f"read this hotkey's weights on netuid {netuid}", read)

    def neurons(self, netuid: int) -> list[Neuron]:
        graph = self._run(
            f"read the metagraph of netuid {netuid}",
            lambda sub: sub.subnets.metagraph(netuid, commitments=False),
        )
        if graph is None:
            raise ChainError(f"netuid {netuid} does not exist on {self.network}")
        return [
            Neuron(n.uid, n.hotkey, bool(n.validator_permit), int(n.last_update)) for n in graph.neurons
        ]

    def subnet_owner(self, netuid: int) -> str | None:
        """The owner hotkey subtensor records when the subnet is registered (and the owner may
        change with `set_sn_owner_hotkey`); its uid is where burned weight goes."""
        owner = self._run(f"read the owner of netuid {netuid}",
                          lambda sub: sub.query(_SubtensorModule.SubnetOwnerHotkey, [netuid]))
        return str(owner) if owner else None

    def commitments(self, netuid: int) -> list[RawCommitment]:
        entries = self._run(
            f"read the commitments of netuid {netuid}", lambda sub: sub.subnets.commitments(netuid)
        )
        out = [
            RawCommitment(c.hotkey, c.uid, int(c.block), raw_field_bytes(c.fields))
            for c in entries.values()
        ]
        return sorted(out, key=lambda c: (c.block, c.hotkey))

    # -- writes --------------------------------------------------------------------------------
    def commit(self, netuid: int, data: bytes) -> int:
        """Commit `data`; if the hotkey's commitment already holds exactly these bytes (e.g. an
        earlier attempt landed before the connection dropped), nothing is sent and its block is
        returned — re-committing would only move the evidence of authorship to a later block."""
        data = bytes(data)
        if not data or len(data) > MAX_COMMITMENT_BYTES:
            raise ValueError(f"commitment is {len(data)} bytes; the chain takes 1 to {MAX_COMMITMENT_BYTES}")
        hotkey = self.hotkey
        call = bt.calls.Commitments.set_commitment(netuid=netuid, info={"fields": [{f"Raw{len(data)}": data}]})

        def submit(sub: bt.Subtensor) -> int:
            # The pallet refuses unregistered hotkeys anyway; asking first gives a clear error
            # and spends no fee.
            if sub.neurons.uid(hotkey, netuid) is None:
                raise NotRegistered(f"hotkey {hotkey} is not registered on netuid {netuid} ({self.network})")
            current = sub.identity.commitment(netuid, hotkey)
            if current is not None and raw_field_bytes(current.fields) == data:
                return int(current.block)
            result = sub.submit_call(call, self.wallet, signer="hotkey").raise_for_failure()
            return _inclusion_block(result) or int(sub.block)

        return self._run(f"commit on netuid {netuid}", submit)

    def set_weights(self, netuid: int, weights: Mapping[int, float], version_key: int) -> WeightsReceipt:
        """Set (or, on commit-reveal subnets, commit) weights; the receipt says which."""
        weights = {int(uid): float(w) for uid, w in weights.items()}
        if not any(w > 0 for w in weights.values()):
            raise ChainError("no positive weight to set")
        hotkey = self.hotkey
        sent_at: list[int] = []  # block of the attempt that got as far as submitting

        def submit(sub: bt.Subtensor) -> WeightsReceipt:
            block, last, limit = self._weights_window(sub, netuid, hotkey)
            committing = bool(sub.query(_SubtensorModule.CommitRevealWeightsEnabled, [netuid]))
            status = "committed" if committing else "set"
            if sent_at and last >= sent_at[-1]:
                # The previous attempt landed before the connection dropped: don't resend.
                return WeightsReceipt(status, last)
            if limit and last and block - last < limit:
                raise WeightsRateLimited(
                    f"weights set {block - last} blocks ago on netuid {netuid}; the limit is {limit} blocks",
                    retry_in_blocks=limit - (block - last),
                )
            sent_at.append(block)
            intent = bt.SetWeights(netuid=netuid, weights=weights, version_key=version_key)
            result = sub.execute(intent, self.wallet).raise_for_failure()
            reveal = (getattr(result, "data", None) or {}).get("reveal_round")
            return WeightsReceipt(status, _inclusion_block(result) or block, int(reveal) if reveal else None)

        return self._run(f"set weights on netuid {netuid}", submit)

    def close(self) -> None:
        self._drop_client()

    # -- internals -----------------------------------------------------------------------------
    def _weights_window(self, sub: bt.Subtensor, netuid: int, hotkey: str) -> tuple[int, int, int]:
        """(head block, this hotkey's last weights block, rate limit), read at one block before
        anything is signed; an unregistered hotkey is refused here."""
        snap = sub.at()
        uid = snap.query(_SubtensorModule.Uids, [netuid, hotkey])
        if uid is None:
            raise NotRegistered(f"hotkey {hotkey} is not registered on netuid {netuid} ({self.network})")
        limit = int(snap.query(_SubtensorModule.WeightsSetRateLimit, [netuid]) or 0)
        last_updates = snap.query(_SubtensorModule.LastUpdate, [netuid]) or []
        last = int(last_updates[int(uid)]) if int(uid) < len(last_updates) else 0
        return int(snap.block), last, limit

    def _client(self) -> bt.Subtensor:
        if self._sub is None:
            self._sub = bt.Subtensor(self.network, substrate=self._substrate)
        return self._sub

    def _drop_client(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                sub.close()

    def _run(self, what: str, op: Callable[[bt.Subtensor], T]) -> T:
        """Run `op` on a connected client, reconnecting on connection loss; map SDK errors."""
        delays = list(self._backoff.delays())
        last: BaseException | None = None
        for attempt in range(len(delays) + 1):
            try:
                return op(self._client())
            except ChainError:
                raise
            except Exception as exc:  # noqa: BLE001 - translated below, never leaked
                if not is_connection_error(exc):
                    raise translate_error(exc) from exc
                last = exc
                # A dead RPC backend stays dead (its connect() is idempotent): start afresh.
                self._drop_client()
                if attempt < len(delays):
                    log.warning("%s: %s; reconnecting in %.1fs", what, _one_line(exc), delays[attempt])
                    self._sleep(delays[attempt])
        raise ChainUnavailable(
            f"{self.network}: could not {what} after {len(delays) + 1} attempts: {_one_line(last)}"
        ) from last


def _tokens(value: Any) -> float:
    """A rao amount (int, or an SDK Balance) as whole tokens."""
    if value is None:
        return 0.0
    rao = getattr(value, "rao", value)
    try:
        return int(rao) / 1e9
    except (TypeError, ValueError):
        return 0.0


def raw_field_bytes(fields: list) -> bytes:
    """The plaintext of a commitment: its `Raw<n>` fields' bytes, concatenated.

    Sealed (timelock) and hash fields carry no plaintext and contribute nothing, so a commitment
    made only of those reads as empty and is rejected by the scan.
    """
    out = b""
    for entry in fields or []:
        if not isinstance(entry, dict):
            continue
        for variant, value in entry.items():
            if str(variant).startswith("Raw"):
                out += _field_value_bytes(value)
    return out


def _field_value_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return bytes(int(b) & 0xFF for b in value)
    if isinstance(value, str):
        if value.startswith("0x"):
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                pass
        return value.encode("utf-8", "surrogateescape")
    return b""


def is_connection_error(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) says the endpoint is gone rather than "no"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _CONNECTION_TYPES):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def translate_error(exc: BaseException) -> ChainError:
    """The port's error for an SDK failure (registration and rate limits keep their meaning)."""
    message = _one_line(exc)
    code = getattr(exc, "code", None)
    if code == bt.ErrorCode.NOT_REGISTERED:
        return NotRegistered(message)
    if code == bt.ErrorCode.RATE_LIMITED:
        match = _RETRY_IN.search(message)
        return WeightsRateLimited(message, retry_in_blocks=int(match.group(1)) if match else 1)
    if isinstance(exc, bt.BittensorError):
        return ChainError(message)
    return ChainError(f"unexpected chain response ({type(exc).__name__}): {message}")


def _inclusion_block(result: Any) -> int | None:
    """The block an extrinsic landed in, from its "block-index" id."""
    height, _, _ = (getattr(result, "extrinsic_id", None) or "").partition("-")
    return int(height) if height.isdigit() else None


def _one_line(exc: BaseException | str | None) -> str:
    text = str(exc) if exc is not None else ""
    return " ".join(text.split())[:300] or type(exc).__name__
