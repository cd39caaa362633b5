"""`subnet dry-run --mode basilica`: the production Basilica runtime against an in-process twin.

The twin speaks Basilica's real API (the real SDK talks to it) and runs each deployment for real:
the env folder under the process runtime, behind a front that checks the deployment's share token.
So a dry run exercises the whole deployment path (ledger, UUIDs, share tokens, polling, fault
attribution, deletion) on one machine with no account and no money.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, AsyncContextManager, Mapping, Sequence

from subnet.protocol.commitment import ImageRef
from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.ledger import Ledger, spend_of
from subnet.compute.settings import load_settings
from subnet.config import Settings
from subnet.protocol import Submission
from subnet.runtime.basilica import BasilicaRuntime
from subnet.twins.basilica_twin import BasilicaTwin
from subnet.twins.deployment_host import ActorHost


class LocalBasilica:
    name = "basilica"
    dedicated_hardware = False  # the twin's Actors share this machine: keep the start barrier

    def __init__(self, inner: Any, settings: Settings, poll_s: float = 0.1) -> None:
        self._images: dict[str, str] = {}
        self._home = Path(tempfile.mkdtemp(prefix="subnet-basilica-twin-"))
        token = secrets.token_urlsafe(16)
        self.twin = BasilicaTwin(token=token, actor_host=ActorHost(inner, resolve=self._images.__getitem__))
        self.twin.start()
        self._ledger = Ledger(self._home / "ledger.sqlite")
        # The local twin has no rate limit to respect: unpaced.
        gpu = BasilicaGPUClient(load_settings(api_key=token, api_url=self.twin.url, requests_per_minute=0),
                                ledger=self._ledger)
        local = settings.model_copy(update={"home": self._home})
        self.runtime = BasilicaRuntime(DeploymentClient(gpu), local, poll_s=poll_s)

    def source_for(self, ref: ImageRef, env_dir: str) -> str:
        """The image reference a deployment is created with; the twin runs `env_dir` for it."""
        self._images[str(ref)] = env_dir
        return str(ref)

    def open(self, submission: Submission, environment: Mapping[str, str] | None = None) -> AsyncContextManager[Any]:
        return self.runtime.open(submission, environment) if environment else self.runtime.open(submission)

    def set_needs_gpu(self, needs: bool) -> None:
        self.runtime.set_needs_gpu(needs)

    async def preflight(self, submissions: Sequence[Submission]) -> str | None:
        return await self.runtime.preflight(submissions)

    def summary(self) -> dict[str, Any]:
        """What the dry run rented: the GPU and its price, deployments created and deleted, and
        dollars at that price, said to be an estimate unless the (twin's) usage history billed them."""
        rows = self._ledger.entries("deployment")
        spent = spend_of(rows, time.time())
        offering = self.runtime._offering
        return {"gpu_type": offering.gpu_type if offering else None,
                "hourly_price": float(offering.box_hourly_rate) if offering else None,
                "deployments_created": len([r for r in rows if r.remote_id]),
                # what each deployment asked for, in order: its GPU models, or "CPU" (a challenge needing none)
                "deployed_on": [r.gpu_type for r in rows if r.remote_id],
                "deployments_deleted": len([r for r in rows if r.state == "stopped"]),
                "deployments_left": len([r for r in rows if r.live]),
                "dollars": round(float(spent.total), 6), "dollars_source": spent.source}

    def close(self) -> None:
        self.twin.stop()
        self._ledger.close()
        shutil.rmtree(self._home, ignore_errors=True)
