"""Copy protection by image label, against a real registry (Debian's docker-registry on 127.0.0.1):
`build_env_image` labels the image with the miner's hotkey, the push carries it inside the
digest, and the validator reads it back from the manifest and config — never pulling or running
the image. A digest the registry does not have is the miner's named fault."""

from __future__ import annotations

import pytest

from subnet.util import aio
from subnet.chain.base import RawCommitment
from subnet.chain.commitments import scan_commitments
from subnet.protocol.commitment import parse_image_ref
from subnet.miner.build import build_env_image
from subnet.miner.push import push_image
from subnet.protocol import FaultKind, MinerFault
from subnet.registry.client import LABEL_HOTKEY, RegistryClient

from docker_support import IMAGES
from test_build_publish import local_registry  # noqa: F401  (fixture)

pytestmark = pytest.mark.docker


async def _facts(ref):
    client = RegistryClient()
    try:
        return await client.facts(ref)
    finally:
        await client.close()


def test_the_hotkey_label_travels_with_the_digest_and_decides_ownership(docker_client, base_image, local_registry):  # noqa: F811
    tag = "subnet-test/labelled:latest"
    built = build_env_image(IMAGES / "hostile", tag, client=docker_client, labels={LABEL_HOTKEY: "5Author"})
    repo = f"{local_registry}/subnet-test/labelled"
    try:
        assert docker_client.images.get(built.image_id).labels[LABEL_HOTKEY] == "5Author"
        reference = push_image(built.image_id, repo, client=docker_client)
        ref = parse_image_ref(reference)
        before = {c.id for c in docker_client.containers.list(all=True)}
        facts = aio.run(_facts(ref))
        assert facts.hotkey == "5Author" and facts.digest == ref.digest
        assert {c.id for c in docker_client.containers.list(all=True)} == before  # nothing was run

        # A watcher who sees the commitment and commits the same digest first is still a copy.
        raws = [RawCommitment("5Watcher", 1, 10, reference.encode()), RawCommitment("5Author", 2, 11, reference.encode())]
        scan = scan_commitments(raws, image_owners={ref.digest: facts.hotkey})
        assert [c.hotkey for c in scan.accepted] == ["5Author"]
        assert [(c.hotkey, c.basis) for c in scan.copies] == [("5Watcher", "label")]

        # Committing the local image id instead of the pushed manifest digest: manifest unknown.
        wrong = parse_image_ref(f"{repo}@{built.image_id}")
        with pytest.raises(MinerFault) as missing:
            aio.run(_facts(wrong))
        assert missing.value.kind is FaultKind.IMAGE_MISSING and "manifest unknown" in missing.value.detail
    finally:
        for name in (tag, f"{repo}:latest"):
            try:
                docker_client.images.remove(name, noprune=True)
            except Exception:  # noqa: BLE001
                pass
