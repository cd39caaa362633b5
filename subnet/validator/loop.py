"""The long-running validator: a round every `interval` seconds until stopped.

Chain trouble (a dropped websocket, a node that does not answer) and state-file trouble (locked,
full, damaged: `subnet.state.db`) end a round early with one line in the log and a backoff; they
never end the validator, and results already gathered are kept (`subnet.validator.results`).
Anything else that escapes a round is a validator bug: its traceback is logged (once per place it
was raised), the round is marked abandoned, and the next round runs after the same backoff.
Weights that are rate-limited are simply not sent this round; the next round tries again. Each
round starts by reaping this validator's own leftovers from dead runs (`DockerRuntime.reap_stale`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Callable, Sequence

from subnet.chain.base import Chain, ChainError
from subnet.state.first_seen import FirstSeen
from subnet.protocol.commitment import ImageRef
from subnet.config import Settings
from subnet.registry.policy import CachingResolver, RegistryRefused, Resolver, check_registry
from subnet.validator.admission import Admission, ImageInspector, candidate_refs
from subnet.runtime.images import is_local
from subnet.state.db import StateError, describe, retrying
from subnet.util.text import one_line
from subnet.state.store import Store
from subnet.validator.challenge_choice import make_challenge
from subnet.validator.llm import LlmService
from subnet.validator.report import RoundReport
from subnet.validator.service import Unresolvable, Validator, plan_round, round_seed
from subnet.util.aio import in_thread

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


class RoundFailed(Exception):
    """A round ended by an unexpected error (a validator bug); the message is one line."""


def _origin(exc: BaseException) -> tuple[str, str, int]:
    """The exception's type and the line that raised it: the same bug logs its traceback once."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return (type(exc).__name__, tb.tb_frame.f_code.co_filename if tb else "", tb.tb_lineno if tb else 0)


def load_secret(home: Path) -> bytes:
    """The validator's private round-seed secret, made once and kept with mode 0600. Raises
    StateError (one line) when it can be neither read nor made (a folder, a read-only home)."""
    path = home / "round-secret"
    try:
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
        return path.read_bytes()
    except OSError as exc:
        raise StateError("io", path, f"cannot use the round secret {path}: {exc.strerror or exc}") from None


def image_resolver(allow_local: bool, allowed_registries: Sequence[str] = (),
                   resolve_host: Resolver | None = None) -> Callable[[ImageRef], str]:
    """What the Docker and Basilica runtimes start: the reference itself, pinned by digest.

    On a real network the registry must pass `subnet.registry.policy` (no loopback, private or
    link-local registries unless allowlisted); the devchain (`allow_local`) runs local references."""

    def resolve(ref: ImageRef) -> str:
        if is_local(ref):
            if not allow_local:
                raise Unresolvable("local.invalid references name images on the miner's machine; push to a registry")
            return str(ref)
        if not allow_local:
            try:
                check_registry(ref.registry, allowed_registries, resolve_host)
            except RegistryRefused as exc:
                raise Unresolvable(str(exc), kind="registry-refused") from None
        return str(ref)

    return resolve


class ValidatorLoop:
    def __init__(
        self,
        chain: Chain,
        runtime,
        settings: Settings,
        store: Store,
        first_seen: FirstSeen,
        allow_local: bool = False,
        observer=None,
        inspector: ImageInspector | None = None,
        llm: LlmService | None = None,
    ) -> None:
        self.chain = chain
        self.runtime = runtime
        self.store = store
        self.settings = settings
        self.first_seen = first_seen
        self.resolve = image_resolver(allow_local, settings.allowed_registries, CachingResolver())
        self.inspector = inspector
        self.allow_local = allow_local
        self.secret = load_secret(settings.home)
        challenge = make_challenge(settings.challenge, settings.n, settings.depth)
        self.llm = llm  # started with the loop, stopped with it (an LLM challenge only)
        self.validator = Validator(chain, runtime, challenge, settings, store, observer=observer, llm=llm)
        self.sleep = asyncio.sleep  # between rounds and in backoffs (tests shorten it)
        self._tracebacks_logged: set[tuple[str, str, int]] = set()

    async def run_once(self) -> RoundReport:
        await self._reap()
        raws = await asyncio.to_thread(self.chain.commitments, self.settings.netuid)
        admission = Admission()
        if self.inspector is not None:
            refs = await asyncio.to_thread(candidate_refs, raws, self.resolve, self.allow_local)  # DNS: off the loop
            admission = await self.inspector.admit(refs)
        # plan_round records first sightings in the state file: a thread of its own (`in_thread`), so a
        # file locked by another process holds neither the loop nor, at a stop, the process's exit.
        plan = await in_thread(plan_round, raws, self.resolve, self.first_seen, None, admission.owners)
        plan.faults = admission.faults
        block = await asyncio.to_thread(self.chain.current_block)
        return await self.validator.run_round(plan, round_seed(self.secret, block))

    async def run_forever(self, interval_s: float, on_report: Callable[[RoundReport], None], once: bool = False) -> None:
        if self.llm is not None:
            await self.llm.start()
        try:
            await self._rounds(interval_s, on_report, once)
        finally:
            if self.llm is not None:
                await self.llm.stop()

    async def _rounds(self, interval_s: float, on_report: Callable[[RoundReport], None], once: bool) -> None:
        backoff = 5.0
        while True:
            try:
                report = await self.run_once()
            except (ChainError, StateError, sqlite3.Error) as exc:
                if once:
                    raise self._state_error(exc)
                log.warning("round skipped: %s; retrying in %.0fs", self._why(exc), backoff)
            except Exception as exc:  # noqa: BLE001 - nothing a round meets may end the validator
                failure = self._round_failed(exc)
                if once:
                    raise failure from None
                log.warning("%s; next round in %.0fs", failure, backoff)
            else:
                on_report(report)
                backoff = 5.0
                if once:
                    return
                await self.sleep(interval_s)
                continue
            await self.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _round_failed(self, exc: Exception) -> "RoundFailed":
        """Log the traceback (once per kind of failure), mark the round abandoned, say it in one line."""
        why = f"{type(exc).__name__}: {one_line(str(exc))}"
        where = _origin(exc)
        if where not in self._tracebacks_logged:
            self._tracebacks_logged.add(where)
            log.error("round failed unexpectedly (a validator bug; please report it)", exc_info=exc)
        try:
            abandoned = self.abandon_unfinished(f"validator error: {why}")
        except Exception as second:  # noqa: BLE001 - the state file's own trouble: say so, carry on
            abandoned = []
            log.warning("could not mark the failed round abandoned: %s", one_line(str(second)))
        what = f"round {', '.join(map(str, abandoned))} abandoned" if abandoned else "round abandoned"
        return RoundFailed(f"{what}: validator error: {why}")

    def _state_error(self, exc: Exception) -> Exception:
        # First-seen digests and others share the store's file and raise raw sqlite3 errors.
        return describe(exc, self.store.path) if isinstance(exc, sqlite3.Error) else exc

    def _why(self, exc: Exception) -> str:
        return f"chain: {exc}" if isinstance(exc, ChainError) else str(self._state_error(exc))

    async def _reap(self) -> None:
        reap = getattr(self.runtime, "reap_stale", None)
        if reap is None:
            return
        try:
            await asyncio.to_thread(reap)
        except Exception as exc:  # noqa: BLE001 - the daemon's trouble: the round's starts say so per miner
            log.warning("could not look for leftovers: %s", one_line(str(exc)))

    # -- stopping (see subnet.validator.shutdown) -------------------------------------------------
    async def close_runtime(self) -> None:
        """Close the runtime's async clients (a Vast runtime's httpx client) on the serving loop."""
        close = getattr(self.runtime, "aclose", None)
        if close is None:
            return
        try:
            await close()
        except Exception as exc:  # noqa: BLE001 - the process is stopping; say it, do not mask why
            log.warning("could not close the runtime's clients: %s", one_line(str(exc)))

    def remove_leftovers(self) -> int:
        """Remove whatever this run still owns in the runtime (blocking); how many objects."""
        remove = getattr(self.runtime, "remove_own", None)
        return remove() if remove is not None else 0

    def abandon_unfinished(self, reason: str) -> list[int]:
        """Mark rounds without an end abandoned (but those whose results wait in memory)."""
        self.validator.results.flush()
        keep = self.validator.results.unwritten_rounds
        return retrying(self.store.path, lambda: self.store.abandon_unfinished(reason, keep))

    def unwritten_rounds(self) -> list[int]:
        return self.validator.results.unwritten_rounds
