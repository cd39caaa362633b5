"""Which committed images a round may run, and who owns each — before anything is pulled.

For every well-formed commitment whose registry passes the policy, the image's manifest and
config are read from the registry the miner named (never pulled, never run) and verified against
the committed digest (`subnet.registry.client`): the hotkey label settles ownership, and a
registry that does not have the digest, or serves content that does not verify, is the committing
miner's fault. Every distinct reference is read on its own, so a thief who commits an honest
digest on a registry of their own can fault only their own commitment, never the author's.

Bounds: at most `concurrency` images read at once, each within `image_timeout` seconds (every
request it takes), all within `round_timeout`; an image not read in time is infrastructure for
the round. Whatever goes wrong becomes that miner's fault or infrastructure, in one line.

Kept in the subnet's store: verified labels (immutable per digest: read once) and faults proven
by the content itself (bytes that hash to the digest, e.g. a manifest nested too deeply), for
`fault_memory` seconds, so a deterministic fault does not cost the validator every round. Other
failures are not kept: a miner who pushes the missing image is seen at the next round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from subnet.chain.base import RawCommitment
from subnet.chain.commitments import classify
from subnet.protocol.commitment import ImageRef
from subnet.protocol import FaultKind, InfraFault, MinerFault
from subnet.registry.client import ImageFacts, ProvenFault, RegistryClient
from subnet.registry.fetch import HopPolicy
from subnet.registry.policy import is_loopback_registry
from subnet.runtime.images import is_local
from subnet.state.store import Store
from subnet.util.text import one_line
from subnet.util.aio import in_thread

log = logging.getLogger(__name__)


@dataclass
class Admission:
    owners: dict[str, str | None] = field(default_factory=dict)  # digest → hotkey its verified label names
    faults: dict[str, Exception] = field(default_factory=dict)  # committing hotkey → MinerFault | InfraFault


@dataclass(frozen=True)
class AdmissionLimits:
    concurrency: int = 16
    request_timeout: float = 15.0  # one registry request, whole
    image_timeout: float = 45.0  # every request one image takes
    round_timeout: float = 120.0  # the round's whole registry check
    fault_memory: float = 24 * 3600.0  # how long a content-proven fault is remembered

    @classmethod
    def from_settings(cls, settings) -> "AdmissionLimits":
        return cls(settings.admission_concurrency, settings.registry_timeout, settings.admission_timeout,
                   settings.admission_round_timeout, settings.admission_fault_memory)


def candidate_refs(raws: Iterable[RawCommitment], resolve, loopback_only: bool = False) -> dict[str, ImageRef]:
    """hotkey → the registry image it committed, for commitments the resolver (policy) accepts.

    `loopback_only` (the devchain): only images in a registry on this machine are inspected —
    a local chain's commitments often name images that exist nowhere, and a dev loop must not
    go out to public registries."""
    refs: dict[str, ImageRef] = {}
    for raw in sorted(raws, key=lambda r: r.block):  # the chain keeps a hotkey's latest
        ref = classify(raw)
        if not isinstance(ref, ImageRef) or is_local(ref):
            continue
        if loopback_only and not is_loopback_registry(ref.registry):
            continue
        try:
            resolve(ref)
        except Exception:  # noqa: BLE001 - refused here means reported by plan_round, not inspected
            continue
        refs[raw.hotkey] = ref
    return refs


class ImageInspector:
    def __init__(self, store: Store, client: RegistryClient | None = None, limits: AdmissionLimits | None = None,
                 policy: HopPolicy | None = None) -> None:
        self.store = store
        self.limits = limits or AdmissionLimits()
        self._client = client
        self._policy = policy or HopPolicy()

    @classmethod
    def for_validator(cls, store: Store, settings, loopback_only: bool, resolve=None) -> "ImageInspector":
        """Redirects and token realms follow the registry policy: loopback only on the devchain."""
        policy = HopPolicy(loopback_only, tuple(settings.allowed_registries), resolve)
        return cls(store, limits=AdmissionLimits.from_settings(settings), policy=policy)

    async def admit(self, refs: Mapping[str, ImageRef]) -> Admission:
        digests = {ref.digest for ref in refs.values()}
        # Store reads and writes wait in threads of their own: a locked state file must not hold the loop.
        admission = Admission(owners=dict(await in_thread(self.store.image_labels, digests)))
        since = time.time() - self.limits.fault_memory
        stored_faults = await in_thread(self.store.image_faults, digests, since)
        proven: dict[str, Exception] = {d: MinerFault(FaultKind(kind), detail) for d, (kind, detail) in stored_faults.items()}
        todo = {ref.pinned: ref for ref in refs.values() if ref.digest not in admission.owners and ref.digest not in proven}
        results = await self._read_all(todo) if todo else {}
        for pinned, result in results.items():
            digest = todo[pinned].digest
            if isinstance(result, ImageFacts):
                await in_thread(self.store.save_image_label, digest, result.hotkey)
                admission.owners[digest] = result.hotkey
            elif isinstance(result, ProvenFault):  # the digest's own bytes: true from any registry
                await in_thread(self.store.save_image_fault, digest, result.kind.value, result.detail)
                proven[digest] = result
        for hotkey, ref in refs.items():
            fault = proven.get(ref.digest) or results.get(ref.pinned)
            if isinstance(fault, Exception):
                admission.faults[hotkey] = fault
        return admission

    async def _read_all(self, todo: Mapping[str, ImageRef]) -> dict[str, ImageFacts | Exception]:
        limit = asyncio.Semaphore(self.limits.concurrency)
        client = self._client or RegistryClient(timeout_s=self.limits.request_timeout, policy=self._policy)
        jobs = {pinned: asyncio.ensure_future(self._read(client, ref, limit)) for pinned, ref in todo.items()}
        try:
            _, late = await asyncio.wait(jobs.values(), timeout=self.limits.round_timeout)
            for job in late:
                job.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        finally:
            if self._client is None:
                await client.close()
        cut = InfraFault(f"not read within the round's registry deadline of {self.limits.round_timeout:g}s")
        return {pinned: cut if job.cancelled() else job.result() for pinned, job in jobs.items()}

    async def _read(self, client: RegistryClient, ref: ImageRef, limit: asyncio.Semaphore) -> ImageFacts | Exception:
        async with limit:
            try:
                return await asyncio.wait_for(client.facts(ref), self.limits.image_timeout)
            except asyncio.TimeoutError:
                return InfraFault(f"registry {ref.registry}: {ref.pinned} not read within {self.limits.image_timeout:g}s")
            except (MinerFault, InfraFault) as exc:
                return exc
            except Exception as exc:  # noqa: BLE001 - a validator bug must cost one image, not the process
                why = f"{type(exc).__name__}: {one_line(str(exc))}"
                log.warning("reading %s from its registry failed unexpectedly: %s", ref.pinned, why)
                return InfraFault(f"validator error reading {ref.pinned}: {why}")
