"""Which committed images a round may run, and who owns each — before anything is pulled.

For every well-formed commitment whose registry passes the policy, the image's manifest and
config are read from its registry (never pulled, never run): the hotkey label settles ownership,
and a registry that does not have the digest is the miner's fault (`image_missing`). Labels are
immutable per digest, so each is fetched once and kept in the subnet's store; failures are
not kept, so a miner who pushes the missing image is seen at the next round.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from subnet.chain.base import RawCommitment
from subnet.chain.commitments import classify
from subnet.protocol.commitment import ImageRef
from subnet.protocol import InfraFault, MinerFault
from subnet.registry.client import RegistryClient
from subnet.registry.policy import is_loopback_registry
from subnet.runtime.images import is_local
from subnet.state.store import Store


@dataclass
class Admission:
    owners: dict[str, str | None] = field(default_factory=dict)  # digest → hotkey its label names
    faults: dict[str, Exception] = field(default_factory=dict)  # digest → MinerFault | InfraFault


def candidate_refs(raws: Iterable[RawCommitment], resolve: Callable[[ImageRef], str],
                   loopback_only: bool = False) -> dict[str, ImageRef]:
    """The registry images among the commitments that the resolver (policy) accepts.

    `loopback_only` (the devchain): only images in a registry on this machine are inspected —
    a local chain's commitments often name images that exist nowhere, and a dev loop must not
    go out to public registries."""
    refs: dict[str, ImageRef] = {}
    for raw in raws:
        ref = classify(raw)
        if not isinstance(ref, ImageRef) or is_local(ref):
            continue
        if loopback_only and not is_loopback_registry(ref.registry):
            continue
        try:
            resolve(ref)
        except Exception:  # noqa: BLE001 - refused here means reported by plan_round, not inspected
            continue
        refs.setdefault(ref.digest, ref)
    return refs


class ImageInspector:
    def __init__(self, store: Store, client: RegistryClient | None = None, concurrency: int = 8) -> None:
        self.store = store
        self._client = client
        self._limit = asyncio.Semaphore(concurrency)

    async def admit(self, refs: Mapping[str, ImageRef]) -> Admission:
        admission = Admission(owners=dict(self.store.image_labels(refs)))
        todo = [ref for digest, ref in refs.items() if digest not in admission.owners]
        if not todo:
            return admission
        client = self._client or RegistryClient()
        try:
            results = await asyncio.gather(*(self._facts(client, ref) for ref in todo))
        finally:
            if self._client is None:
                await client.close()
        for ref, result in zip(todo, results):
            if isinstance(result, Exception):
                admission.faults[ref.digest] = result
            else:
                self.store.save_image_label(ref.digest, result)
                admission.owners[ref.digest] = result
        return admission

    async def _facts(self, client: RegistryClient, ref: ImageRef) -> str | None | Exception:
        async with self._limit:
            try:
                return (await client.facts(ref)).hotkey
            except (MinerFault, InfraFault) as exc:
                return exc
