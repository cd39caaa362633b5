"""Both twins with real Actors, and the cloud runtime over the production Basilica and Vast runtimes.

Basilica: the real `basilica` SDK → BasilicaTwin, each deployment running its env folder (process
runtime) behind the share-token front. Vast: our httpx client → VastTwin, each instance running its
env folder with the instance env (the Actor checks its bearer token). One policy over both, set the
way an operator sets it (SUBNET_MAX_HOURLY_RATE / SUBNET_ALLOWED_GPU_TYPES), so the Basilica client
and the market read the same cap."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from subnet.challenges.matrix_chain import MatrixChain
from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.ledger import Ledger
from subnet.compute.providers import load_policy
from subnet.compute.selection import learn_starts, samples_from_ledger
from subnet.compute.settings import load_settings
from subnet.compute.start_budget import StartBudget
from subnet.config import Settings
from subnet.protocol import Submission
from subnet.runtime.basilica import BasilicaRuntime
from subnet.runtime.market import MarketRuntime
from subnet.runtime.process import ProcessRuntime
from subnet.twins.basilica_twin import BasilicaTwin
from subnet.twins.deployment_host import ActorHost
from subnet.twins.vast import VastTwin
from subnet.util import aio
from subnet.validator.round import RoundEngine, RoundLimits

from vast_support import KEY, SCALE, digest_of, image_of, runtime_for

BASILICA_TOKEN = "basilica-canary-7f3a"
CAP = Decimal("0.30")
ALLOWED = "V100:spot:1,RTX-A4000:ondemand:1"
SMALL = {"tasks": 3, "call_timeout": 20.0}  # busy time per box ≈ a minute: start times weigh in the cost


class Twins:
    def __init__(self, basilica: BasilicaTwin, vast: VastTwin, home: Path) -> None:
        self.basilica, self.vast, self.home = basilica, vast, home

    def basilica_posts(self) -> list[dict]:
        """The bodies of every deployment the validator asked Basilica for."""
        return [r["body"] for r in self.basilica.state.requests
                if r["method"] == "POST" and r["path"].rstrip("/").endswith("/deployments")]


def start_twins(envs: dict[int, Path], monkeypatch, tmp_path: Path, basilica_book, vast_book):
    """Both twins started, the environment set as an operator with both credentials would. Returns a
    context manager yielding `Twins`."""
    import contextlib

    for var in ("BASILICA_API_TOKEN", "BASILICA_API_KEY", "BASILICA_API_URL", "VAST_API_KEY", "VAST_URL",
                "BASILICA_MAX_HOURLY_RATE", "BASILICA_ALLOWED_GPU_TYPES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SUBNET_MAX_HOURLY_RATE", str(CAP))
    monkeypatch.setenv("SUBNET_ALLOWED_GPU_TYPES", ALLOWED)
    monkeypatch.chdir(tmp_path)
    images = {image_of(uid): str(path) for uid, path in envs.items()}

    @contextlib.contextmanager
    def both():
        host = ActorHost(ProcessRuntime(start_timeout=30), resolve=images.__getitem__)
        with BasilicaTwin(token=BASILICA_TOKEN, offerings=basilica_book, actor_host=host) as basilica, \
                VastTwin(runtime=ProcessRuntime(start_timeout=30), resolve=images.__getitem__, time_scale=SCALE,
                         offers=vast_book, api_key=KEY) as vast:
            monkeypatch.setenv("BASILICA_API_URL", basilica.url)
            monkeypatch.setenv("BASILICA_API_TOKEN", BASILICA_TOKEN)
            monkeypatch.setenv("BASILICA_BACKOFF", "0.01")
            monkeypatch.setenv("BASILICA_REQUESTS_PER_MINUTE", "0")
            yield Twins(basilica, vast, tmp_path / "home")

    return both()


def basilica_runtime(home: Path) -> BasilicaRuntime:
    s = Settings(home=home, **SMALL)
    client = DeploymentClient(BasilicaGPUClient(load_settings(), ledger=Ledger(s.ledger_path)))
    budget = StartBudget(s.basilica_start_timeout, s.start_timeout).scaled(SCALE)
    return BasilicaRuntime(client, s, poll_s=3.0 / SCALE, budget=budget)


def market_for(twins: Twins, providers=("basilica", "vast")) -> tuple[MarketRuntime, Ledger]:
    """The cloud runtime over the named providers, all writing one ledger in one home (as in production)."""
    built = []
    if "basilica" in providers:
        built.append(basilica_runtime(twins.home))
    if "vast" in providers:
        built.append(runtime_for(twins.home, twins.vast.base_url, policy=load_policy(), **SMALL)[0])
    ledger = Ledger(Settings(home=twins.home).ledger_path)
    market = MarketRuntime(built, load_policy(), Settings(home=twins.home, **SMALL),
                           lambda: learn_starts(samples_from_ledger(ledger.entries())))
    return market, ledger


def run_round(market: MarketRuntime, uids=(1, 2), between=None):
    """preflight → the round engine, as the round service does (`between()` runs in between: the
    market moves after the search). Returns (refusal, outcomes by uid)."""
    challenge = MatrixChain(n=64, depth=2)
    subs = [Submission(uid, f"hk{uid}", image_of(uid), digest_of(uid)) for uid in uids]
    engine = RoundEngine(market, challenge, RoundLimits(call_timeout=20))

    async def go():
        refusal = await market.preflight(subs)
        if refusal:
            return refusal, {}
        if between is not None:
            between()
        outcomes = await engine.run(subs, challenge.make_tasks(b"market", SMALL["tasks"]))
        return None, {o.submission.uid: o for o in outcomes}

    return aio.run(go())


def past_starts(ledger: Ledger, provider: str, gpu_model: str, seconds: float, n: int = 5) -> None:
    """`n` finished boxes in the ledger history whose Actor answered `seconds` after the create call."""
    kind = "instance" if provider == "vast" else "deployment"
    for i in range(n):
        name = f"history-{provider}-{gpu_model.replace(' ', '')}-{i}"
        row = ledger.begin(kind, name, owner="validator:history", gpu_type=gpu_model, hourly_rate=Decimal("0.1"),
                           detail={"provider": provider, "gpu_model": gpu_model})
        ledger.mark_active(name, f"old-{i}")
        ledger.add_detail(name, ready_at=float(row.created_at) + seconds)
        ledger.mark_stopped(name)
