"""Turn raw on-chain commitments into the images a validator will run, and say why the rest won't.

Pure apart from the `FirstSeen` record it is handed. For each `RawCommitment`:

- not registered (no uid), empty, oversized, not UTF-8, non-ASCII, hostile characters, a tag
  without a digest, or otherwise malformed → a `Rejection` with a one-line reason;
- a valid digest-pinned reference → its owner is accepted, every other hotkey committing the
  same digest is a `Copy` (fault "copy": it earns nothing). The owner is
  1. the hotkey the image's own label names (`subnet miner build` writes it; the digest covers
     it, so a mempool watcher who front-runs the commitment cannot claim it), when known;
  2. otherwise the earliest committer the validator has evidence of (`first_seen`); when several
     hotkeys first committed it in the same block, nobody owns it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from subnet.chain.base import RawCommitment
from subnet.state.first_seen import FirstSeen, MemoryFirstSeen, Owner
from subnet.protocol.commitment import MAX_COMMITMENT_BYTES, ImageRef, InvalidCommitment, parse_image_ref

# Rejection kinds: stable strings a report or a metric can group by.
UNREGISTERED = "unregistered"
EMPTY = "empty"
OVERSIZED = "oversized"
ENCODING = "encoding"
HOSTILE = "hostile"
TAG_ONLY = "tag-only"
MALFORMED = "malformed"

COPY_FAULT = "copy"

# The only characters the reference grammar can contain; anything else is treated as an attempt
# to smuggle something (shell metacharacters, quotes, whitespace, control bytes).
_REFERENCE_CHARS = frozenset(string.ascii_letters + string.digits + "._-/:@")


@dataclass(frozen=True)
class AcceptedCommitment:
    uid: int
    hotkey: str
    image: ImageRef
    block: int


@dataclass(frozen=True)
class Copy:
    """A valid reference whose digest another hotkey committed first."""

    uid: int
    hotkey: str
    image: ImageRef
    block: int
    owner_hotkey: str
    owner_block: int
    fault: str = COPY_FAULT
    basis: str = "first-seen"  # or "label" (the image names its owner) or "tie" (nobody owns it)

    @property
    def reason(self) -> str:
        if self.basis == "label":
            return f"copy: image {self.image.digest} is labelled for hotkey {self.owner_hotkey}"
        if self.basis == "tie":
            return f"copy: {self.image.digest} was first committed by several hotkeys in block {self.owner_block}; nobody owns it"
        return f"copy of {self.image.digest} first committed by {self.owner_hotkey} at block {self.owner_block}"


@dataclass(frozen=True)
class Rejection:
    hotkey: str
    uid: int | None
    reason: str
    kind: str = MALFORMED


@dataclass
class CommitmentScan:
    accepted: list[AcceptedCommitment] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)


def classify(raw: RawCommitment) -> ImageRef | Rejection:
    """The commitment's image reference, or the one reason it is not acceptable."""

    def reject(kind: str, reason: str) -> Rejection:
        return Rejection(raw.hotkey, raw.uid, _one_line(reason), kind)

    if raw.uid is None:
        return reject(UNREGISTERED, "hotkey is not registered on the subnet (no uid)")
    data = bytes(raw.data)
    if not data:
        return reject(EMPTY, "empty: no plaintext Raw field (sealed or hash-only commitments are not accepted)")
    if len(data) > MAX_COMMITMENT_BYTES:
        return reject(OVERSIZED, f"{len(data)} bytes; a commitment holds at most {MAX_COMMITMENT_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return reject(ENCODING, "not UTF-8")
    if not text.isascii():
        sample = "".join(sorted({c for c in text if not c.isascii()}))[:8]
        # ascii() keeps the reason printable and on one line whatever the miner sent.
        return reject(ENCODING, f"non-ASCII characters {ascii(sample)} (look-alikes are not accepted)")
    try:
        return parse_image_ref(text)
    except InvalidCommitment as exc:
        if any(c not in _REFERENCE_CHARS for c in text):
            return reject(HOSTILE, str(exc))
        if "@" not in text:
            return reject(TAG_ONLY, str(exc))
        return reject(MALFORMED, str(exc))


def scan_commitments(
    raws: Iterable[RawCommitment],
    first_seen: FirstSeen | None = None,
    image_owners: Mapping[str, str | None] | None = None,
) -> CommitmentScan:
    """Classify every commitment and settle digest ownership (see the module docstring).

    `first_seen` should be the persistent `FirstSeenStore` in a validator; without it, ownership
    is decided from this scan alone. `image_owners` maps a digest to the hotkey its image label
    names (None or absent: no label known).
    """
    seen = first_seen if first_seen is not None else MemoryFirstSeen()
    scan = CommitmentScan()
    valid: list[AcceptedCommitment] = []
    for raw in _latest_per_hotkey(raws):
        result = classify(raw)
        if isinstance(result, Rejection):
            scan.rejected.append(result)
        else:
            valid.append(AcceptedCommitment(int(raw.uid), raw.hotkey, result, int(raw.block)))  # type: ignore[arg-type]

    valid.sort(key=lambda c: (c.block, c.uid, c.hotkey))
    groups: dict[str, list[AcceptedCommitment]] = {}
    for c in valid:
        groups.setdefault(c.image.digest, []).append(c)
    for digest, group in groups.items():
        owners = [seen.claim(digest, c.hotkey, c.block) for c in group][-1]
        labelled = (image_owners or {}).get(digest)
        if labelled:
            owner, basis = Owner(digest, labelled, owners.block), "label"
        elif sum(1 for c in group if c.block == owners.block) > 1:
            owner, basis = Owner(digest, "", owners.block), "tie"
        else:
            owner, basis = owners, "first-seen"
        for c in group:
            if c.hotkey == owner.hotkey:
                scan.accepted.append(c)
            else:
                scan.copies.append(Copy(c.uid, c.hotkey, c.image, c.block, owner.hotkey, owner.block, basis=basis))

    scan.accepted.sort(key=lambda c: c.uid)
    scan.copies.sort(key=lambda c: c.uid)
    scan.rejected.sort(key=lambda r: (r.uid is None, r.uid if r.uid is not None else 0, r.hotkey))
    return scan


def _latest_per_hotkey(raws: Iterable[RawCommitment]) -> list[RawCommitment]:
    # The chain holds one commitment per hotkey; keep the newest if a source repeats one.
    latest: dict[str, RawCommitment] = {}
    for raw in raws:
        if raw.hotkey not in latest or raw.block > latest[raw.hotkey].block:
            latest[raw.hotkey] = raw
    return list(latest.values())


def _one_line(text: str) -> str:
    return " ".join(text.split())
