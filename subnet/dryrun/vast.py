"""`subnet dry-run --mode vast`: the production Vast runtime against an in-process Vast twin.

The twin speaks Vast's API (our httpx client talks to it over loopback) and runs each instance for
real: the env folder under the process runtime, with the instance's env, so the Actor checks its
bearer token as a rented box does. A dry run exercises the whole instance path (offer search with
the cap, ledger, labels, tokens, polling, fault attribution, destroy) with no account and no money.
Its offers start in 60 production seconds, run 60× faster (as is the runtime's start budget).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, AsyncContextManager, Mapping, Sequence

from subnet.compute.ledger import Ledger, spend_of
from subnet.compute.providers import load_policy
from subnet.compute.start_budget import StartBudget
from subnet.compute.vast import VastClient
from subnet.config import Settings
from subnet.protocol import Submission
from subnet.protocol.commitment import ImageRef
from subnet.runtime.vast import DEFAULT_START_S, ClientPerLoop, VastRuntime
from subnet.twins.vast import VastTwin
from subnet.twins.vast.offers import vast_offer

TIME_SCALE = 60.0


def twin_offers() -> list:
    """A small market: allowed boxes under the default cap, one bid, and two the policy refuses."""
    return [vast_offer(201, "RTX A4000", "0.21"), vast_offer(202, "RTX A4000", "0.18"),
            vast_offer(203, "Tesla V100", "0.60", min_bid="0.09"), vast_offer(204, "RTX 4090", "0.08"),
            vast_offer(205, "RTX A4000", "0.95")] + [vast_offer(210 + i, "RTX A4000", "0.25") for i in range(16)]


class LocalVast:
    name = "vast"
    dedicated_hardware = False  # the twin's Actors share this machine: keep the start barrier

    def __init__(self, inner: Any, settings: Settings, poll_s: float = 0.1) -> None:
        self._images: dict[str, str] = {}
        self._home = Path(tempfile.mkdtemp(prefix="subnet-vast-twin-"))
        key = "twin-" + secrets.token_urlsafe(16)
        self.twin = VastTwin(runtime=inner, resolve=self._images.__getitem__, time_scale=TIME_SCALE,
                             offers=twin_offers(), api_key=key)
        base_url = self.twin.start()
        self._ledger = Ledger(self._home / "state.sqlite")
        local = settings.model_copy(update={"home": self._home})
        budget = StartBudget(DEFAULT_START_S, settings.start_timeout * TIME_SCALE).scaled(TIME_SCALE)
        self.runtime = VastRuntime(ClientPerLoop(lambda: VastClient(key, base_url=base_url, backoff=0.01)), local,
                                   self._ledger, load_policy(), budget=budget, poll_s=poll_s, secrets_to_keep=[key])

    def source_for(self, ref: ImageRef, env_dir: str) -> str:
        """The image reference an instance is created with; the twin runs `env_dir` for it."""
        self._images[str(ref)] = env_dir
        return str(ref)

    def open(self, submission: Submission, environment: Mapping[str, str] | None = None) -> AsyncContextManager[Any]:
        return self.runtime.open(submission, environment)

    def set_needs_gpu(self, needs: bool) -> None:
        self.runtime.set_needs_gpu(needs)

    async def preflight(self, submissions: Sequence[Submission]) -> str | None:
        return await self.runtime.preflight(submissions)

    def summary(self) -> dict[str, Any]:
        """What the dry run rented: the boxes and their prices, instances created and destroyed, and
        dollars at those prices × time (an estimate: the twin bills nothing)."""
        rows = self._ledger.entries("instance")
        spent = spend_of(rows, time.time())
        prices = sorted({r.hourly_rate for r in rows if r.hourly_rate is not None})
        gpus = sorted({r.gpu_type for r in rows if r.gpu_type})
        return {"provider": "vast", "gpu_type": ", ".join(gpus) or None,
                "hourly_price": float(max(prices)) if prices else None,
                "hourly_prices": [float(p) for p in prices],
                "cap": float(self.runtime.policy.max_hourly_rate),
                "deployments_created": len([r for r in rows if r.remote_id]),
                "deployments_deleted": len([r for r in rows if r.state == "stopped"]),
                "deployments_left": len([r for r in rows if r.live]),
                "dollars": round(float(spent.total), 6), "dollars_source": "estimate"}

    def close(self) -> None:
        self.twin.close()
        self._ledger.close()
        shutil.rmtree(self._home, ignore_errors=True)
