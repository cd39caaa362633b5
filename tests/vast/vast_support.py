"""Shared by the Vast runtime tests: the twin with real Actors (env folders under the process
runtime), and the Vast runtime on default settings with its clock time-scaled."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from subnet.challenges.matrix_chain import MatrixChain
from subnet.compute.ledger import Ledger
from subnet.compute.policy import GpuPolicy, parse_allowlist
from subnet.compute.start_budget import StartBudget
from subnet.compute.vast import VastClient
from subnet.config import Settings
from subnet.protocol import Submission
from subnet.runtime.vast import DEFAULT_START_S, ClientPerLoop, VastRuntime
from subnet.util import aio
from subnet.validator.round import RoundEngine, RoundLimits

KEY = "twin-vast-key-for-runtime"
SCALE = 15.0  # production seconds per test second, for the twin's starts and the validator's budget
POLICY = GpuPolicy(parse_allowlist("RTX-A4000:ondemand:1,V100:spot:1"), Decimal("0.44"))


def digest_of(uid: int) -> str:
    return "sha256:" + f"{uid:02x}" * 32


def image_of(uid: int) -> str:
    return f"docker.io/miner{uid}/env@{digest_of(uid)}"


def runtime_for(home: Path, base_url: str, *, key: str = KEY, scale: float = SCALE, policy: GpuPolicy = POLICY,
                **settings) -> tuple[VastRuntime, Ledger]:
    s = Settings(home=home, **settings)
    ledger = Ledger(s.ledger_path)
    budget = StartBudget(DEFAULT_START_S, s.start_timeout).scaled(scale)
    runtime = VastRuntime(ClientPerLoop(lambda: VastClient(key, base_url=base_url, backoff=0.01)), s, ledger, policy,
                          budget=budget, poll_s=5.0 / scale, secrets_to_keep=[key])
    return runtime, ledger


def round_with(runtime, uids=(1, 2), tasks=3, **limits):
    challenge = MatrixChain(n=64, depth=2)
    subs = [Submission(uid, f"hk{uid}", image_of(uid), digest_of(uid)) for uid in uids]
    engine = RoundEngine(runtime, challenge, RoundLimits(**({"call_timeout": 20} | limits)))

    async def run():
        refusal = await runtime.preflight(subs)
        assert refusal is None, refusal
        return await engine.run(subs, challenge.make_tasks(b"vast", tasks))

    return {o.submission.uid: o for o in aio.run(run())}
