"""Tokens: one per (round, miner), valid while the round runs, compared in constant time.

A token reads `sn-llm.<round>.<uid>.<64 hex>`: the round and uid select the one token that can
match, and `hmac.compare_digest` compares the whole string in time independent of where it differs,
so a probe learns nothing from timing. A closed round's tokens are forgotten (401 round_closed).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass, field

PREFIX = "sn-llm"


@dataclass(frozen=True)
class LlmGrant:
    round_id: int
    uid: int
    hotkey: str
    token: str = field(repr=False)  # the Actor's OPENAI_API_KEY; never in a repr or a log line


class Grants:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_miner: dict[tuple[int, int], LlmGrant] = {}
        self._closed: set[int] = set()

    def grant(self, round_id: int, uid: int, hotkey: str) -> LlmGrant:
        with self._lock:
            if round_id in self._closed:
                raise ValueError(f"round {round_id} is closed: no new LLM tokens for it")
            key = (round_id, uid)
            if key not in self._by_miner:
                token = f"{PREFIX}.{round_id}.{uid}.{secrets.token_hex(32)}"
                self._by_miner[key] = LlmGrant(round_id, uid, hotkey, token)
            return self._by_miner[key]

    def close_round(self, round_id: int) -> list[int]:
        with self._lock:
            self._closed.add(round_id)
            uids = [uid for (r, uid) in self._by_miner if r == round_id]
            for uid in uids:
                del self._by_miner[(round_id, uid)]
            return uids

    def check(self, token: str) -> LlmGrant | str:
        """The grant the token proves, or the refusal reason: "bad_token" or "round_closed"."""
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != PREFIX or not parts[1].isdigit() or not parts[2].isdigit():
            return "bad_token"
        round_id, uid = int(parts[1]), int(parts[2])
        with self._lock:
            grant = self._by_miner.get((round_id, uid))
            closed = round_id in self._closed
        if grant is None:
            return "round_closed" if closed else "bad_token"
        if not hmac.compare_digest(grant.token.encode(), token.encode()):
            return "bad_token"
        return grant
