"""The registry client's rules one at a time, against an in-process httpx transport (no sockets, no
DNS): what is believed (only what hashes to its digest), where a request may be sent (every hop
under the registry policy, the token never leaving its origin), how much is read (the cap, also
for a gzip body) and how deep JSON may nest."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from subnet.util import aio
from subnet.protocol.commitment import parse_image_ref
from subnet.protocol import FaultKind, MinerFault
from subnet.registry.client import MAX_DOCUMENT_BYTES, ProvenFault, RegistryClient
from subnet.registry.fetch import MAX_REDIRECTS, HopPolicy, HopRefused, json_depth

from registry_images import image, index, serve, sha

NAMES = {"registry.example.com": ["93.184.216.34"], "cdn.example.com": ["93.184.216.40"],
         "auth.example.com": ["93.184.216.41"], "127.0.0.1.example.com": ["10.0.0.7"], "inside.example.com": ["10.0.0.8"]}
PUBLIC = HopPolicy(resolve=NAMES.__getitem__)


def client(handle, policy: HopPolicy = PUBLIC) -> RegistryClient:
    return RegistryClient(httpx.AsyncClient(transport=httpx.MockTransport(handle)), policy=policy)


def ref(digest: str, registry: str = "registry.example.com"):
    return parse_image_ref(f"{registry}/acme/env@{digest}")


def facts(handle, digest: str, policy: HopPolicy = PUBLIC):
    return aio.run(_facts(client(handle, policy), ref(digest)))


async def _facts(c: RegistryClient, r):
    try:
        return await c.facts(r)
    finally:
        await c.close()


def fault_of(handle, digest: str) -> MinerFault:
    with pytest.raises(MinerFault) as caught:
        facts(handle, digest)
    return caught.value


# -- verified content ----------------------------------------------------------------------------
def test_an_index_is_followed_to_the_platform_manifest_and_both_are_verified():
    author, arm = image("5Author"), image("5Arm", salt="arm")
    listing = index({"linux/arm64": arm.digest, "linux/amd64": author.digest})
    found = facts(serve({sha(listing): listing, **author.documents(), **arm.documents()}), sha(listing))
    assert found.hotkey == "5Author" and found.digest == sha(listing)


def test_a_config_that_does_not_hash_to_the_manifests_config_digest_is_never_believed():
    author, forged = image("5Author"), image("5Thief")
    fault = fault_of(serve({author.digest: author.manifest, author.config_digest: forged.config}), author.digest)
    assert fault.kind is FaultKind.BAD_IMAGE and "image config does not match its digest" in fault.detail
    assert not isinstance(fault, ProvenFault)  # the registry lied: another registry may not


@pytest.mark.parametrize("manifest, why", [
    (b"[" * 40 + b"]" * 40, "nested too deeply"),
    (b"not json", "is not a JSON object"),
    (b"[1, 2]", "is not a JSON object"),
    (json.dumps({"config": {"digest": "sha256:../../etc"}}).encode(), "has digest 'sha256:../../etc'"),
    (json.dumps({"layers": []}).encode(), "has no digest"),
])
def test_a_fault_in_content_that_hashes_to_the_digest_is_proven(manifest, why):
    fault = fault_of(serve({sha(manifest): manifest}), sha(manifest))
    assert isinstance(fault, ProvenFault) and fault.kind is FaultKind.BAD_IMAGE and why in fault.detail


def test_an_index_without_this_platform_is_a_proven_missing_image():
    arm = image("5Arm")
    listing = index({"linux/arm64": arm.digest})
    fault = fault_of(serve({sha(listing): listing}), sha(listing))
    assert isinstance(fault, ProvenFault) and fault.kind is FaultKind.IMAGE_MISSING and "no linux/amd64" in fault.detail


# -- bounded reads -------------------------------------------------------------------------------
def test_a_body_over_the_cap_is_refused_even_without_content_length():
    def handle(request):
        return httpx.Response(200, stream=httpx.ByteStream(b" " * (MAX_DOCUMENT_BYTES + 1)))

    fault = fault_of(handle, sha(b"x"))
    assert fault.kind is FaultKind.BAD_IMAGE and f"over {MAX_DOCUMENT_BYTES} bytes" in fault.detail


def test_a_gzip_body_is_decoded_but_never_past_the_cap():
    author = image("5Author")
    bomb = gzip.compress(b" " * (MAX_DOCUMENT_BYTES * 4))  # ~16 KiB that decode to 16 MiB

    def handle(request):
        body = bomb if "/manifests/" in request.url.path else gzip.compress(author.config)
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(body))

    assert len(bomb) < MAX_DOCUMENT_BYTES
    fault = fault_of(handle, author.digest)
    assert fault.kind is FaultKind.BAD_IMAGE and "decodes to over" in fault.detail

    def honest(request):  # a registry behind a CDN that gzips anyway: still read and verified
        raw = serve(author.documents())(request).content
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(gzip.compress(raw)))

    assert facts(honest, author.digest).hotkey == "5Author"


@pytest.mark.parametrize("document, depth", [
    (b"{}", 1), (b"[[[]]]", 3), (b'{"a": "[[[[{{{{"}', 1), (b'["\\"[[[[", [1]]', 2), (b"12", 0),
    (b"[" * 100_000 + b"]" * 100_000, 100_000),
])
def test_json_depth_is_counted_outside_strings(document, depth):
    assert json_depth(document) == depth


# -- every hop passes the policy -----------------------------------------------------------------
@pytest.mark.parametrize("url, allowed", [
    ("https://cdn.example.com/blob", True),
    ("https://169.254.169.254/latest/meta-data", False),  # link-local literal
    ("https://inside.example.com/x", False),  # resolves to a private address
    ("https://127.0.0.1.example.com/token", False),  # not loopback: a name (resolving privately here)
    ("http://cdn.example.com/blob", False),  # plain HTTP off this machine
    ("http://127.0.0.1:5000/x", False),  # loopback: not allowlisted on a real network
    ("ftp://cdn.example.com/x", False),
])
def test_a_hop_is_checked_like_a_registry(url, allowed):
    check = PUBLIC.check(httpx.URL(url), "redirect to")
    if allowed:
        aio.run(check)
    else:
        with pytest.raises(HopRefused):
            aio.run(check)


def test_on_the_devchain_every_hop_stays_on_this_machine():
    local = HopPolicy(loopback_only=True)
    aio.run(local.check(httpx.URL("http://127.0.0.1:5000/token"), "token realm"))
    aio.run(local.check(httpx.URL("http://localhost:5000/token"), "token realm"))
    for url in ("http://127.0.0.1.example.com/token", "https://cdn.example.com/x"):
        with pytest.raises(HopRefused, match="leaves this machine|plain HTTP"):
            aio.run(local.check(httpx.URL(url), "token realm"))


def test_redirects_are_followed_within_the_policy_and_the_token_stays_at_its_origin():
    author = image("5Author")
    documents = serve(author.documents())
    seen = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "auth.example.com":
            return httpx.Response(200, json={"token": "t0k"})
        if request.url.host == "registry.example.com" and request.headers.get("authorization") != "Bearer t0k":
            return httpx.Response(401, headers={"www-authenticate": 'Bearer realm="https://auth.example.com/token"'})
        if request.url.host == "registry.example.com" and "/blobs/" in request.url.path:
            return httpx.Response(307, headers={"location": f"https://cdn.example.com{request.url.path}"})
        return documents(request)

    assert facts(handle, author.digest).hotkey == "5Author"
    assert ("cdn.example.com", None) in seen  # the blob came from the CDN, without our token
    assert all(auth is None for host, auth in seen if host != "registry.example.com")


def test_redirects_are_bounded():
    def handle(request):
        return httpx.Response(302, headers={"location": f"https://registry.example.com/loop{len(request.url.path)}"})

    fault = fault_of(handle, sha(b"x"))
    assert fault.kind is FaultKind.BAD_IMAGE and f"more than {MAX_REDIRECTS} redirects" in fault.detail


def test_a_token_that_would_break_a_header_is_not_used():
    def handle(request):
        if request.url.host == "auth.example.com":
            return httpx.Response(200, json={"token": "a\r\nX-Injected: 1"})
        return httpx.Response(401, headers={"www-authenticate": 'Bearer realm="https://auth.example.com/t"'})

    from subnet.protocol import InfraFault

    with pytest.raises(InfraFault, match="no anonymous token"):
        facts(handle, sha(b"x"))
