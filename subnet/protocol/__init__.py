"""Wire-level contracts shared by the miner, the validator and every runtime.

Faults are split in two on purpose: a `MinerFault` costs the miner the task; an `InfraFault`
(Basilica down, no GPU, registry unreachable, Docker missing) never counts against anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

ACTOR_PORT = 8000
EVALUATE_METHOD = "evaluate"


class FaultKind(str, Enum):
    INVALID_ENV = "invalid_env"  # env folder or image is not an affinetes Actor env
    START_FAILED = "start_failed"  # the Actor server never became healthy
    NO_METHOD = "no_method"  # the server has no `evaluate`
    ERROR = "error"  # evaluate raised, or the server answered an HTTP error
    TIMEOUT = "timeout"  # no answer within the validator's deadline
    OVERSIZED = "oversized"  # the answer is larger than the response cap
    UNREACHABLE = "unreachable"  # the Actor went away mid-round (crash, exit, OOM kill)
    BAD_OUTPUT = "bad_output"  # not a JSON object of the challenge's answer schema
    WRONG_ANSWER = "wrong_answer"  # well-formed, but verification failed
    COPY = "copy"  # the image digest was first committed by another hotkey (or is labelled for one)
    IMAGE_MISSING = "image_missing"  # the registry has no such digest ("manifest unknown"), or refuses anonymous pulls
    # what the registry served does not verify against the commitment (digest mismatch), or is no
    # image a validator reads (over the size cap, nested too deeply, not JSON), or the registry sent
    # the validator to a host it refuses (a redirect or token realm on a private address)
    BAD_IMAGE = "bad_image"


class MinerFault(Exception):
    """The miner's Actor misbehaved; the task counts as failed for that miner only."""

    def __init__(self, kind: FaultKind, detail: str) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail


class InfraFault(Exception):
    """The validator's own infrastructure failed; the task is not counted for anyone."""


class StartRefused(InfraFault):
    """A GPU provider refused to start a box before anything ran (the offer was rented by someone
    else, the create call was refused, no node has the GPU): nothing of ours is alive and nothing was
    paid for, so the miner may be started on another provider (the cloud runtime does, once)."""


@dataclass(frozen=True)
class Submission:
    """One miner's entry for a round: who, and what to run.

    `source` is an env folder for the process runtime, or a digest-pinned image reference for
    the Docker and Basilica runtimes. `digest` identifies the content; results are stored by it.
    """

    uid: int
    hotkey: str
    source: str
    digest: str
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.source
