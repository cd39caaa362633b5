"""Registries a validator will pull from (pure, stubbed resolver: no DNS), and the registry client's
fault split against an in-process httpx transport (no sockets at all)."""

from __future__ import annotations

import httpx
import pytest

from subnet.util import aio
from subnet.chain.base import RawCommitment
from subnet.protocol.commitment import parse_image_ref
from subnet.protocol import FaultKind, InfraFault, MinerFault
from registry_images import image, serve
from subnet.registry.client import RegistryClient, registry_base
from subnet.registry.fetch import HopPolicy
from subnet.registry.policy import CachingResolver, RegistryRefused, check_registry
from subnet.validator.loop import image_resolver
from subnet.validator.service import plan_round

DIGEST = "sha256:" + "d" * 64
PUBLIC = {"ghcr.io": ["140.82.112.34"], "registry.example.com": ["93.184.216.34"],
          "evil.example.com": ["10.1.2.3"], "meta.example.com": ["169.254.169.254"],
          "loop.example.com": ["127.0.0.1"], "six.example.com": ["fd00::1"], "gone.example.com": []}


def stub(host: str) -> list[str]:
    return PUBLIC[host]


@pytest.mark.parametrize(
    "registry, why",
    [
        ("localhost:5000", "local name"),
        ("localhost", "local name"),
        ("registry.internal", "local name"),
        ("box.localhost:5000", "local name"),
        ("127.0.0.1", "loopback address"),
        ("127.0.0.1:5000", "loopback address"),
        ("10.0.0.1:5000", "private address"),
        ("192.168.1.20", "private address"),
        ("172.16.0.9:443", "private address"),
        ("169.254.169.254", "link-local address"),
        ("100.64.0.1", "non-public address"),
        ("0.0.0.0", "unspecified address"),
        ("registry", "bare host name"),
        ("evil.example.com", "resolves to 10.1.2.3, a private address"),
        ("meta.example.com:80", "resolves to 169.254.169.254, a link-local address"),
        ("loop.example.com", "resolves to 127.0.0.1, a loopback address"),
        ("six.example.com", "resolves to fd00::1, a private address"),
    ],
)
def test_non_public_registries_are_refused_literal_and_resolved(registry, why):
    with pytest.raises(RegistryRefused) as refused:
        check_registry(registry, resolve=stub)
    assert why in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("registry", ["ghcr.io", "registry.example.com:5000", "93.184.216.34", "gone.example.com"])
def test_public_registries_pass(registry):
    check_registry(registry, resolve=stub)


def test_the_operator_allowlist_admits_a_private_mirror():
    check_registry("10.0.0.1:5000", allowed=["10.0.0.1:5000"], resolve=stub)
    check_registry("registry.internal", allowed=["registry.internal"], resolve=stub)
    check_registry("evil.example.com", allowed=["EVIL.example.com"], resolve=stub)
    with pytest.raises(RegistryRefused):
        check_registry("10.0.0.2:5000", allowed=["10.0.0.1:5000"], resolve=stub)


def test_resolutions_are_cached_per_host():
    asked = []
    clock = [0.0]
    resolver = CachingResolver(lambda h: asked.append(h) or ["93.184.216.34"], ttl_s=60, clock=lambda: clock[0])
    resolver("a.example.com"), resolver("a.example.com")
    clock[0] = 61
    resolver("a.example.com")
    assert asked == ["a.example.com", "a.example.com"]


def test_a_refused_commitment_is_reported_in_one_line_and_not_run():
    raws = [RawCommitment("5Evil", 3, 10, f"169.254.169.254/x/env@{DIGEST}".encode()),
            RawCommitment("5Good", 4, 11, f"ghcr.io/x/env@{DIGEST.replace('d', 'e')}".encode())]
    plan = plan_round(raws, image_resolver(allow_local=False, resolve_host=stub))
    assert [s.hotkey for s in plan.submissions] == ["5Good"]
    (refused,) = plan.rejected
    assert refused.kind == "registry-refused" and "link-local" in refused.reason
    # the devchain keeps running its local references
    dev = plan_round(raws[:1], image_resolver(allow_local=True, resolve_host=stub))
    assert [s.hotkey for s in dev.submissions] == ["5Evil"]
    allowed = plan_round(raws[:1], image_resolver(False, ["169.254.169.254"], resolve_host=stub))
    assert [s.hotkey for s in allowed.submissions] == ["5Evil"]


# -- the registry client: manifest unknown is the miner's fault, 5xx/timeouts are infra ------------
AUTHOR = image("5Author", other="x")
DIGEST_OK = AUTHOR.digest


def registry_app(behaviour: str):
    documents = serve(AUTHOR.documents())

    def handle(request: httpx.Request) -> httpx.Response:
        if behaviour == "timeout":
            raise httpx.ConnectTimeout("timed out", request=request)
        if behaviour == "5xx":
            return httpx.Response(503, text="unavailable")
        if behaviour == "token" and request.headers.get("authorization") != "Bearer t0k":
            if request.url.host == "auth.example.com":
                assert request.url.params["scope"] == "repository:acme/env:pull"
                return httpx.Response(200, json={"token": "t0k"})
            return httpx.Response(401, headers={"www-authenticate": 'Bearer realm="https://auth.example.com/token",service="reg"'})
        if behaviour == "missing":
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        return documents(request)

    return RegistryClient(httpx.AsyncClient(transport=httpx.MockTransport(handle)), policy=HopPolicy(resolve=stub_auth))


def stub_auth(host: str) -> list[str]:
    return {"auth.example.com": ["93.184.216.35"]}.get(host) or PUBLIC[host]


REF = parse_image_ref(f"registry.example.com/acme/env@{DIGEST_OK}")


@pytest.mark.parametrize("behaviour", ["ok", "token"])
def test_labels_are_read_from_the_manifest_config(behaviour):
    facts = aio.run(registry_app(behaviour).facts(REF))
    assert facts.hotkey == "5Author" and facts.labels["other"] == "x"


def test_manifest_unknown_is_a_named_miner_fault():
    with pytest.raises(MinerFault) as fault:
        aio.run(registry_app("missing").facts(REF))
    assert fault.value.kind is FaultKind.IMAGE_MISSING and "manifest unknown" in fault.value.detail


@pytest.mark.parametrize("behaviour", ["5xx", "timeout"])
def test_registry_trouble_is_infrastructure(behaviour):
    with pytest.raises(InfraFault):
        aio.run(registry_app(behaviour).facts(REF))


def test_plain_http_only_for_loopback_registries():
    assert registry_base("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert registry_base("localhost:5000") == "http://localhost:5000"
    assert registry_base("ghcr.io") == "https://ghcr.io"
    assert registry_base("docker.io") == "https://registry-1.docker.io"


def test_the_inspector_keeps_verified_labels_once_known_and_never_keeps_failures(tmp_path):
    from subnet.state.store import Store
    from subnet.validator.admission import ImageInspector, candidate_refs

    calls = []
    missing = parse_image_ref(f"registry.example.com/acme/gone@sha256:{'f' * 64}")
    documents = serve(AUTHOR.documents())

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return documents(request)

    store = Store(tmp_path / "s.sqlite")
    inspector = ImageInspector(store, RegistryClient(httpx.AsyncClient(transport=httpx.MockTransport(handle))))
    raws = [RawCommitment("5Author", 1, 5, str(REF).encode()), RawCommitment("5Gone", 2, 6, str(missing).encode()),
            RawCommitment("5Local", 3, 7, f"local.invalid/x@sha256:{'1' * 64}".encode())]
    refs = candidate_refs(raws, lambda ref: str(ref))
    assert refs == {"5Author": REF, "5Gone": missing}  # local references are never inspected
    first = aio.run(inspector.admit(refs))
    assert first.owners == {DIGEST_OK: "5Author"}
    assert set(first.faults) == {"5Gone"} and first.faults["5Gone"].kind is FaultKind.IMAGE_MISSING
    asked = len(calls)
    second = aio.run(inspector.admit(refs))
    assert second.owners == {DIGEST_OK: "5Author"} and set(second.faults) == {"5Gone"}
    assert len(calls) == asked + 1  # only the missing image is asked again
    store.close()
