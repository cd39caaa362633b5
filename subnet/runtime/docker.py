"""The Docker runtime: each miner's Actor image in its own hardened, isolated local container.

`prepare()` has the image in the local store (pulled by digest if allowed, on a thread of its own,
shared by every round that wants it); the round engine calls it for every Actor at once, before
any start. Per `open()`: resolve the image (local store; or pull, without `prepare`), create an internal
network of its own, start the container through affinetes' docker mode with the hardening of
`docker_launch.hardening`, wait for `/health` within the start deadline, and hand back an
`AffinetesSession` over affinetes' wrapper (same call path, response cap and fault mapping as
every runtime). On exit, however it exits, the container and the network are removed.

Every container and network carries labels (`subnet.role=miner-actor`, `subnet.owner` = this
validator's identity from its state directory, `subnet.run`, `subnet.slot`). `reap_stale()`
removes only leftovers of this identity whose run's liveness lease (`subnet.state.lease`) has gone
stale: never another validator's, never by host name or PID.
Blocking Docker and affinetes calls run on a dedicated thread pool; the event loop stays free.
A validator running in a container with the host's docker.sock joins each Actor's network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable, Mapping, TypeVar

from subnet.protocol.commitment import ImageRef, InvalidCommitment, parse_image_ref
from subnet.config import Settings
from subnet.state.lease import Lease
from subnet.protocol import FaultKind, InfraFault, MinerFault, Submission
from subnet.runtime.affinetes_session import AffinetesSession, release_env
from subnet.util.aio import settled
from subnet.util.progress import step
from subnet.util.text import one_line
from subnet.runtime.docker_launch import LaunchSpec, cpu_thread_environment, launch
from subnet.runtime.docker_net import (
    GuardUnavailable,
    create_network,
    ensure_host_guard,
    new_slot,
    own_container,
    remove_network,
)
from subnet.runtime.docker_relay import create_relay_bridge, ensure_image, relay_url, start_relay
from subnet.runtime.docker_gpus import GpuPool, GpuUnavailable, device_request, discover
from subnet.runtime.docker_reap import (
    OWNER_LABEL,
    ROLE,
    ROLE_LABEL,
    Reaped,
    reap_dead_runs,
    remove_run,
    remove_slot,
)
from subnet.runtime.docker_settings import DockerSettings
from subnet.runtime.images import PullFailed, find_local, is_local, pull
from subnet.state.identity import validator_identity

log = logging.getLogger(__name__)

_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="subnet-docker")
T = TypeVar("T")


async def _blocking(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_POOL, lambda: fn(*args))


class DockerSession:
    """An `ActorSession` over one container; names OOM kills and exits when a call fails."""

    gpu_type: str | None = None  # set when the Actor has a GPU: its type and price, for scoring
    hourly_price: float | None = None

    def __init__(self, inner: AffinetesSession, container: Any, memory: str) -> None:
        self._inner = inner
        self._container = container
        self._memory = memory

    async def call(self, method: str, kwargs: Mapping[str, Any], timeout: float) -> Any:
        try:
            return await self._inner.call(method, kwargs, timeout)
        except MinerFault as fault:
            if fault.kind in (FaultKind.UNREACHABLE, FaultKind.ERROR):
                raise (await _blocking(self._why_gone, fault)) from None
            raise

    def _why_gone(self, fault: MinerFault) -> MinerFault:
        # A dropped connection arrives before Docker records the exit (or the OOM kill), so give
        # the container a moment to be seen as dead; an ERROR from a live server returns at once.
        patience = 3.0 if fault.kind is FaultKind.UNREACHABLE else 0.0
        deadline = time.monotonic() + patience
        try:
            while True:
                self._container.reload()
                state = self._container.attrs.get("State", {})
                if state.get("Status") != "running" or time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        except Exception:  # noqa: BLE001 - keep the original fault
            return fault
        if state.get("OOMKilled"):
            return MinerFault(FaultKind.UNREACHABLE, f"OOM-killed: the Actor exceeded its {self._memory} memory limit (SUBNET_DOCKER_MEMORY)")
        if state.get("Status") != "running":
            return MinerFault(FaultKind.UNREACHABLE, f"the Actor container exited with code {state.get('ExitCode')}")
        return fault


class DockerRuntime:
    """`Runtime` for Docker mode. `allow_local=True` (dry runs only) accepts
    `local.invalid/...@sha256:<image id>` references; see `subnet.runtime.images`."""

    name = "docker"

    def __init__(
        self,
        settings: Settings | None = None,
        limits: DockerSettings | None = None,
        *,
        run_id: str | None = None,
        allow_local: bool = False,
        client: Any = None,
    ) -> None:
        self.settings = settings or Settings()
        self.limits = limits or DockerSettings()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.allow_local = allow_local
        self._client = client
        self._reaped = False
        self.identity = validator_identity(self.settings.home)
        self.lease = Lease(self.settings.home, self.run_id)
        self._self_container: Any = None  # set when the validator runs in a container (DooD)
        self._looked_for_self = False
        self._pulls: dict[str, Future] = {}  # pinned reference → its pull in flight
        self._pulls_lock = threading.Lock()
        self._pool: GpuPool | None = None
        self._gpus_found = False
        self._gpu_lock = threading.Lock()
        self._relay_bridge: Any = None  # made by gateway_bind_host (LLM challenges only)
        self._relay_host = ""
        self._gateway_target: tuple[str, int] | None = None  # where each Actor's relay forwards to

    # -- labels ----------------------------------------------------------------------------
    def labels(self, slot: str, submission: Submission) -> dict[str, str]:
        return {
            ROLE_LABEL: ROLE,
            OWNER_LABEL: self.identity,
            "subnet.run": self.run_id,
            # Not used here; older validators on the same daemon judge by them and would
            # otherwise reap these Actors as "another host's".
            "subnet.pid": str(os.getpid()),
            "subnet.host": socket.gethostname(),
            "subnet.slot": slot,
            "subnet.uid": str(submission.uid),
        }

    # -- the Runtime port -------------------------------------------------------------------
    async def prepare(self, submission: Submission) -> None:
        """Have the image in the local store before the round's start barrier. `RoundEngine`
        prepares every Actor at once and stops waiting after its pull window; the pull itself
        (stall rule, `SUBNET_PULL_TIMEOUT`) goes on, and a later round joins it, never repeats it."""
        client = await _blocking(self._connect)
        ref, image_id = await _blocking(self._find, client, submission.source)
        if image_id is None:
            await settled(self._pull_job(client, ref))

    @contextlib.asynccontextmanager
    async def open(
        self, submission: Submission, environment: Mapping[str, str] | None = None
    ) -> AsyncIterator[DockerSession]:
        client = await _blocking(self._connect)
        if not self._reaped:
            self._reaped = True
            await _blocking(self.reap_stale)
        image_id = await _blocking(self._resolve, client, submission.source)
        await _blocking(self._guard)
        gpus = await _blocking(self.gpu_pool)
        gpu = await gpus.acquire() if gpus else None  # held while the Actor lives
        slot = new_slot()
        base = f"subnet-actor-{self.run_id[:8]}-{slot}"
        spec = LaunchSpec(
            image_id=image_id,
            name=f"{base}-uid{submission.uid}",
            network=base,
            labels=self.labels(slot, submission),
            env={**self.settings.forwarded_environment(), **cpu_thread_environment(self.limits), **(environment or {})},
            start_timeout=self.settings.start_timeout,
            device_requests=(device_request(gpu),) if gpu else (),
        )
        env = None
        abort = threading.Event()
        relay = self._gateway_target if environment else None
        starting = asyncio.get_running_loop().run_in_executor(_POOL, self._start, client, spec, slot, abort, relay)
        try:
            env = await asyncio.shield(starting)
            inner = AffinetesSession(env, self.settings.max_response_bytes)
            session = DockerSession(inner, env._backend._container, self.limits.memory)
            if gpu is not None:  # priced like a Basilica box: the GPU it ran on, at the policy's price
                session.gpu_type, session.hourly_price = gpu.gpu_type, gpu.hourly_price
            yield session
        finally:
            if env is None:
                # Cancelled mid-start: stop the health wait and let the start thread finish, so
                # nothing it creates can appear after the cleanup below.
                abort.set()
                with contextlib.suppress(BaseException):
                    env = await asyncio.shield(starting)
            if env is not None:
                await release_env(env)
            # Shielded: even a cancelled round finishes removing what it created.
            await asyncio.shield(_blocking(remove_slot, client, slot))
            if gpu is not None:
                gpus.release(gpu)

    # -- GPUs ----------------------------------------------------------------------------------
    def gpu_pool(self) -> GpuPool | None:
        """This host's GPUs for Actors (found once; None without any, or when the validator's
        challenge needs none, e.g. an LLM challenge: its Actors run on CPUs and are priced so).
        Blocking. Raises InfraFault with one line when GPU settings cannot be honoured (see
        `docker_gpus.discover`)."""
        if not challenge_needs_gpu(self.settings.challenge):
            return None
        with self._gpu_lock:  # Actors open concurrently: one discovery, one pool
            return self._find_gpus()

    def _find_gpus(self) -> GpuPool | None:
        if not self._gpus_found:
            client = self._connect()
            try:
                gpus = discover(client.info(), self.limits.gpus, self.limits.gpu_type, self.settings.local_gpu_price)
            except GpuUnavailable as exc:
                raise InfraFault(str(exc)) from None
            self._pool = GpuPool(gpus, self.limits.actors_per_gpu) if gpus else None
            self._gpus_found = True
            if gpus:
                log.info("Actors get a GPU each: %s", ", ".join(f"{g.device_id} {g.gpu_type} ${g.hourly_price:g}/h"
                                                                 for g in gpus))
        return self._pool

    @property
    def dedicated_hardware(self) -> bool:
        """With GPUs each Actor holds its own GPU while it runs and starts its tasks when ready
        (Actors waiting for a GPU could never all be up at once)."""
        return self._pool is not None

    # -- housekeeping ------------------------------------------------------------------------
    def reap_stale(self) -> Reaped:
        """Remove this identity's Actor containers and networks whose run is dead by its lease
        (`docker_reap.reap_dead_runs`). Blocking; the validator loop calls it at the start of every
        round (and the first `open()` of a run does)."""
        self._reaped = True
        return reap_dead_runs(self._connect(), self.settings.home, self.identity, self.run_id)

    def remove_own(self) -> int:
        """Remove every container and network of this run now (a stop whose teardown overran)."""
        return 0 if self._client is None else remove_run(self._client, self.identity, self.run_id)

    def close(self) -> None:
        """Stop this run's heartbeat and drop its lease (call once every Actor is removed)."""
        if self._relay_bridge is not None:
            with contextlib.suppress(Exception):  # left over, it is reaped with this run's labels
                remove_network(self._relay_bridge)
            self._relay_bridge = None
        self.lease.stop(release=True)

    # -- blocking helpers (run on the pool) ----------------------------------------------------
    def _connect(self) -> Any:
        if not self.lease.running:
            self.lease.start()  # before anything this run creates can exist
        if self._client is None:
            import docker

            try:
                client = docker.from_env(timeout=60)
                client.ping()
            except Exception as exc:  # noqa: BLE001
                raise InfraFault(f"Docker daemon unreachable: {one_line(exc)}") from None
            self._client = client
        if not self._looked_for_self:
            self._looked_for_self = True
            try:
                self._self_container = own_container(self._client, self.limits.attach_to)
            except Exception as exc:  # noqa: BLE001 - an explicit attach_to that does not exist
                raise InfraFault(f"SUBNET_DOCKER_ATTACH_TO={self.limits.attach_to!r}: {one_line(exc)}") from None
            if self._self_container is not None:
                log.info("validator runs in container %s: it joins each Actor's network", self._self_container.name)
        return self._client

    def _find(self, client: Any, source: str) -> tuple[ImageRef, str | None]:
        """The reference and its local image id (None: not here, and pulling is allowed)."""
        try:
            ref = parse_image_ref(source)
        except InvalidCommitment as exc:
            raise MinerFault(FaultKind.INVALID_ENV, f"not a digest-pinned image reference: {exc}") from None
        if is_local(ref) and not self.allow_local:
            raise MinerFault(FaultKind.INVALID_ENV, "local.invalid references are for dry runs only")
        try:
            image = find_local(client, ref)
        except Exception as exc:  # noqa: BLE001 - daemon errors are infra
            raise InfraFault(f"looking up {ref.pinned}: {one_line(exc)}") from None
        if image is None and is_local(ref):
            raise InfraFault(f"local image {ref.digest[:19]} is not in the image store (subnet miner build)")
        if image is None and not self.limits.pull:
            raise InfraFault(f"{ref.pinned} is not in the local image store and pulling is off")
        return ref, (image.id if image is not None else None)

    def _resolve(self, client: Any, source: str) -> str:
        ref, image_id = self._find(client, source)
        return image_id or self._pull_job(client, ref).result()

    def _pull_job(self, client: Any, ref: ImageRef) -> Future:
        """The pull of `ref`: the one already running, or a new one on a daemon thread (so a pull
        nobody waits for any more never holds the process at exit; the daemon then drops it)."""
        with self._pulls_lock:
            job = self._pulls.get(ref.pinned)
            if job is None:
                job = self._pulls[ref.pinned] = Future()
                threading.Thread(target=self._pull_into, args=(job, client, ref), daemon=True,
                                 name=f"subnet-pull-{ref.digest[7:19]}").start()
            return job

    def _pull_into(self, job: Future, client: Any, ref: ImageRef) -> None:
        try:
            job.set_result(self._pull(client, ref).id)
        except PullFailed as exc:
            job.set_exception(InfraFault(str(exc)))
        except Exception as exc:  # noqa: BLE001 - registry/daemon errors of every kind are infra
            job.set_exception(InfraFault(f"pulling {ref.pinned}: {one_line(exc)}"))
        finally:
            with self._pulls_lock:
                self._pulls.pop(ref.pinned, None)

    def _pull(self, client: Any, ref: Any) -> Any:
        who, started = f"pull {ref.repository}@{ref.digest[7:19]}", time.monotonic()
        step(who, "pulling")
        try:
            image = pull(client, ref, self.settings.pull_stall_timeout, self.settings.pull_timeout,
                         lambda done: step(who, f"pulling: {done / 2**20:.0f} MiB so far"))
        except PullFailed:
            step(who, f"failed after {time.monotonic() - started:.0f}s", done=True)
            raise
        step(who, f"pulled in {time.monotonic() - started:.0f}s", done=True)
        return image

    def _guard(self) -> None:
        try:
            ensure_host_guard(self.limits.host_guard)
        except GuardUnavailable as exc:
            raise InfraFault(f"host guard required but unavailable: {exc}") from None

    def _start(self, client: Any, spec: LaunchSpec, slot: str, abort: threading.Event,
               relay: tuple[str, int] | None = None) -> Any:
        """Network (and the LLM relay), then container; one blocking job so a cancelled start can
        be waited for."""
        try:
            joining = self._self_container is not None
            # icc on only where a second container must reach the Actor or be reached by it
            network = create_network(client, spec.network, slot, spec.labels, icc=joining or relay is not None)
            if joining:
                network.connect(self._self_container)  # DooD: the validator joins to reach the Actor
        except Exception as exc:  # noqa: BLE001 - e.g. the address pools are exhausted
            raise InfraFault(f"creating the Actor's network failed: {one_line(exc)}") from None
        if relay is not None:
            try:
                start_relay(client, f"{spec.name}-relay", self._relay_bridge, network, relay, spec.labels,
                            self.limits.relay_image)
            except Exception as exc:  # noqa: BLE001 - the base image missing, the daemon failing
                raise InfraFault(f"starting the Actor's LLM relay failed: {one_line(exc)}") from None
        return launch(spec, self.limits, abort)

    # -- the LLM gateway's reach (subnet.runtime.docker_relay) ---------------------------------
    def gateway_bind_host(self) -> str:
        """Where the gateway must listen: the host address of this run's relay bridge (made once).
        Blocking."""
        if self._relay_bridge is None:
            client = self._connect()
            ensure_image(client, self.limits.relay_image)
            slot = new_slot()
            labels = {ROLE_LABEL: ROLE, OWNER_LABEL: self.identity, "subnet.run": self.run_id, "subnet.slot": slot}
            self._relay_bridge, self._relay_host = create_relay_bridge(
                client, f"subnet-llm-relay-{self.run_id[:8]}-{slot}", slot, labels, self._self_container)
        return self._relay_host

    def gateway_url(self, host: str, port: int) -> str:
        """OPENAI_BASE_URL for this runtime's Actors; their relays forward to host:port."""
        self._gateway_target = (host, int(port))
        return relay_url()


def challenge_needs_gpu(ident: str) -> bool:
    """Whether the challenge `ident` (e.g. "prose-ledger/1") declares it needs a GPU (unknown: yes)."""
    from subnet.challenges import CHALLENGES

    for challenge in CHALLENGES.values():
        if ident in (challenge.name, f"{challenge.name}/{challenge.version}"):
            return bool(getattr(challenge, "needs_gpu", True))
    return True
