"""One `ValidatorLoop.run_once` on a real network's rules (no local references): the registry policy,
the registry check and the image label act before any Actor starts. DNS is stubbed and the
registry is an in-process httpx transport: nothing leaves the process."""

from __future__ import annotations

import httpx

from subnet.util import aio
from subnet.chain.devchain import DevChain
from subnet.state.first_seen import FirstSeenStore
from subnet.config import Settings
from registry_images import image, serve
from subnet.registry.client import RegistryClient
from subnet.twins.standin import StandInRuntime
from subnet.state.store import Store
from subnet.validator import loop as loop_module
from subnet.validator.admission import ImageInspector
from subnet.validator.loop import ValidatorLoop

ADDRESSES = {"ghcr.io": ["140.82.112.34"], "evil.example.com": ["10.9.9.9"]}
AUTHOR = image("author")


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def registry(request: httpx.Request) -> httpx.Response:
    if "/acme/gone/" in request.url.path:
        return httpx.Response(404)
    return serve(AUTHOR.documents())(request)  # acme/stolen: the author's image, re-pushed


def test_policy_registry_and_label_act_before_any_actor_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(loop_module, "CachingResolver", lambda: ADDRESSES.__getitem__)
    chain = DevChain(tmp_path / "devchain.sqlite", hotkey="validator")
    chain.register(1, "validator", validator_permit=True)
    commits = {
        "author": f"ghcr.io/acme/author@{AUTHOR.digest}",
        "watcher": f"ghcr.io/acme/stolen@{AUTHOR.digest}",  # the author's image, re-pushed under another name
        "gone": f"ghcr.io/acme/gone@{digest(2)}",
        "evil": f"evil.example.com/acme/x@{digest(3)}",
        "meta": f"169.254.169.254/acme/x@{digest(4)}",
    }
    for hotkey in ("watcher", "author", "gone", "evil", "meta"):  # the watcher commits first
        chain.register(1, hotkey)
        chain.as_hotkey(hotkey).commit(1, commits[hotkey].encode())
    store = Store(tmp_path / "subnet.sqlite")
    settings = Settings(home=tmp_path, netuid=1, tasks=2, n=8, depth=1, call_timeout=0.2)
    runtime = StandInRuntime(latency_s=0.001)
    client = RegistryClient(httpx.AsyncClient(transport=httpx.MockTransport(registry)))
    validator_loop = ValidatorLoop(chain, runtime, settings, store, FirstSeenStore(store.path),
                                   inspector=ImageInspector(store, client))
    report = aio.run(validator_loop.run_once())

    miners = {m.hotkey: m for m in report.miners}
    assert miners["watcher"].faults == {"copy": 2} and "labelled for hotkey author" in miners["watcher"].reason
    assert miners["gone"].faults == {"image_missing": 2} and "manifest unknown" in miners["gone"].reason
    assert runtime.closed == 1  # only the author's image ran
    refused = {r["hotkey"]: r for r in report.rejected}
    assert set(refused) == {"evil", "meta"}
    assert refused["evil"]["kind"] == "registry-refused" and "10.9.9.9" in refused["evil"]["reason"]
    assert "link-local" in refused["meta"]["reason"]
    assert store.image_labels([AUTHOR.digest]) == {AUTHOR.digest: "author"}
    store.close()
