"""`subnet dry-run --mode cloud`: the cloud runtime (`subnet.runtime.market`) over both twins.

The Basilica twin and the Vast twin each run the env folders for real (process runtime), as in
`--mode basilica` and `--mode vast`; the production runtimes talk to them over loopback, and the
market runtime places each miner on the box cheapest per evaluation still left on either. The
summary says each round's best box, why, and what each twin rented.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, AsyncContextManager, Mapping, Sequence

from subnet.compute.policy import PolicyFormatError
from subnet.compute.providers import load_policy
from subnet.compute.selection import learn_starts, samples_from_ledger
from subnet.config import Settings
from subnet.dryrun.basilica import LocalBasilica
from subnet.dryrun.vast import LocalVast
from subnet.protocol import Submission
from subnet.protocol.commitment import ImageRef
from subnet.runtime.factory import RuntimeUnavailable
from subnet.runtime.market import MarketRuntime


class LocalCloud:
    name = "cloud"
    dedicated_hardware = False  # the twins' Actors share this machine: keep the start barrier

    def __init__(self, inner: Any, settings: Settings) -> None:
        try:
            policy = load_policy()
        except PolicyFormatError as exc:
            raise RuntimeUnavailable(str(exc)) from None
        self.locals: list[Any] = []
        try:
            self.locals += [LocalBasilica(inner, settings), LocalVast(inner, settings)]
        except BaseException:
            self.close()
            raise
        ledgers = [local._ledger for local in self.locals]  # each twin's home has its own

        def learned():
            return learn_starts(samples_from_ledger(e for ledger in ledgers for e in ledger.entries()))

        self.market = MarketRuntime([local.runtime for local in self.locals], policy, settings, learned,
                                    dedicated_hardware=False)
        self.choices: list[str] = []

    def source_for(self, ref: ImageRef, env_dir: str) -> str:
        """Both twins run `env_dir` for the image reference: either may win the round."""
        for local in self.locals:
            source = local.source_for(ref, env_dir)
        return source

    def open(self, submission: Submission, environment: Mapping[str, str] | None = None) -> AsyncContextManager[Any]:
        return self.market.open(submission, environment)

    def set_needs_gpu(self, needs: bool) -> None:
        self.market.set_needs_gpu(needs)

    async def preflight(self, submissions: Sequence[Submission]) -> str | None:
        refusal = await self.market.preflight(submissions)
        if self.market.choice is not None:
            self.choices.append(self.market.choice.line())
        return refusal

    @property
    def choice(self) -> Any:
        """This round's provider choice (the round report records it)."""
        return self.market.choice

    def summary(self) -> dict[str, Any]:
        """Each twin's summary, their totals, and the line of every round's choice."""
        parts = {(s := local.summary()).get("provider", "basilica"): s for local in self.locals}
        total = sum((Decimal(str(p["dollars"])) for p in parts.values()), Decimal(0))
        used = [p for p in parts.values() if p["deployments_created"]]
        prices = [p["hourly_price"] for p in used if p["hourly_price"]]
        return {"provider": "cloud", "providers": parts, "choices": list(self.choices),
                "gpu_type": ", ".join(p["gpu_type"] for p in used if p["gpu_type"]) or None,
                "hourly_price": max(prices) if prices else None,
                **{k: sum(p[k] for p in parts.values())
                   for k in ("deployments_created", "deployments_deleted", "deployments_left")},
                "dollars": float(total), "dollars_source": "estimate"}

    def close(self) -> None:
        for local in self.locals:
            local.close()
