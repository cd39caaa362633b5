"""The long-running validator: a round every `interval` seconds until stopped.

Chain trouble (a dropped websocket, a node that does not answer) ends a round early with one line
in the log and a backoff; it never ends the validator. Weights that are rate-limited are simply
not sent this round; the next round tries again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path
from typing import Callable, Sequence

from subnet.chain.base import Chain, ChainError
from subnet.chain.first_seen import FirstSeen
from subnet.challenges.matrix_chain import MatrixChain
from subnet.commitment import ImageRef
from subnet.config import Settings
from subnet.registry_policy import CachingResolver, RegistryRefused, Resolver, check_registry
from subnet.validator.admission import Admission, ImageInspector, candidate_refs
from subnet.runtime.images import is_local
from subnet.store import Store
from subnet.validator.report import RoundReport
from subnet.validator.service import Unresolvable, Validator, plan_round, round_seed

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


def load_secret(home: Path) -> bytes:
    """The validator's private round-seed secret, made once and kept with mode 0600."""
    path = home / "round-secret"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()


def image_resolver(allow_local: bool, allowed_registries: Sequence[str] = (),
                   resolve_host: Resolver | None = None) -> Callable[[ImageRef], str]:
    """What the Docker and Basilica runtimes start: the reference itself, pinned by digest.

    On a real network the registry must pass `subnet.registry_policy` (no loopback, private or
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
    ) -> None:
        self.chain = chain
        self.settings = settings
        self.first_seen = first_seen
        self.resolve = image_resolver(allow_local, settings.allowed_registries, CachingResolver())
        self.inspector = inspector
        self.allow_local = allow_local
        self.secret = load_secret(settings.home)
        challenge = MatrixChain(n=settings.n, depth=settings.depth)
        self.validator = Validator(chain, runtime, challenge, settings, store, observer=observer)

    async def run_once(self) -> RoundReport:
        raws = await asyncio.to_thread(self.chain.commitments, self.settings.netuid)
        admission = Admission()
        if self.inspector is not None:
            refs = await asyncio.to_thread(candidate_refs, raws, self.resolve, self.allow_local)  # DNS: off the loop
            admission = await self.inspector.admit(refs)
        plan = await asyncio.to_thread(plan_round, raws, self.resolve, self.first_seen, None, admission.owners)
        plan.faults = admission.faults
        block = await asyncio.to_thread(self.chain.current_block)
        return await self.validator.run_round(plan, round_seed(self.secret, block))

    async def run_forever(self, interval_s: float, on_report: Callable[[RoundReport], None], once: bool = False) -> None:
        backoff = 5.0
        while True:
            try:
                on_report(await self.run_once())
                backoff = 5.0
                if once:
                    return
                await asyncio.sleep(interval_s)
            except ChainError as exc:
                if once:
                    raise
                log.warning("round skipped: chain: %s; retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
