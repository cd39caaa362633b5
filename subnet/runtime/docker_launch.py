"""Start one hardened Actor container through affinetes' docker mode. Blocking: run it in a thread.

`affinetes.load_env(mode="docker")` creates the container with our hardening kwargs passed
through to `containers.run`, waits for `/health` on the container's bridge IP and hands back an
EnvironmentWrapper. Two of its behaviours are unsafe for untrusted images, so they are replaced,
only for the thread that is inside `launch()` (a thread-local switch; other callers of affinetes
in the process see the original code):

- Runtime detection: it decides "am I inside Docker?" from PID 1's name (in this sandbox PID 1
  is `process_api`, so it says yes) and, in what it calls DooD, moves the container onto the
  caller's own network and addresses it by name. We choose the network (and, when the validator
  runs in a container, join it: see `docker_net.own_container`), so we always use the host path:
  the container's IP on its own internal network.
- Health wait: fixed 120 s, blind to a container that already exited. Ours honours the
  validator's start deadline, stops as soon as the container is no longer running and says why.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import httpx

from subnet.protocol import ACTOR_PORT, FaultKind, InfraFault, MinerFault
from subnet.util.text import exception_chain, one_line
from subnet.runtime.docker_settings import DockerSettings

_scope = threading.local()
_patch_lock = threading.Lock()
_patched = False
_FUNCTION_BASED = "function_based"


@dataclass
class _StartWatch:
    deadline: float
    timeout: float
    abort: threading.Event | None = None
    failure: str | None = None


@dataclass(frozen=True)
class LaunchSpec:
    image_id: str  # local image id, sha256:...
    name: str  # container name (unique per Actor)
    network: str  # the Actor's own internal network
    labels: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)  # allowlisted variables only
    start_timeout: float = 60.0
    device_requests: tuple = ()  # docker DeviceRequests: the Actor's GPU, if it has one


def hardening(spec: LaunchSpec, limits: DockerSettings) -> dict[str, Any]:
    """Keyword arguments for docker's `containers.run`, passed through affinetes."""
    from docker.types import LogConfig, Ulimit

    kwargs: dict[str, Any] = dict(
        network=spec.network,
        labels=dict(spec.labels),
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        privileged=False,
        read_only=True,
        tmpfs={"/tmp": f"rw,noexec,nosuid,nodev,size={limits.tmpfs_size}"},
        memswap_limit=limits.memory,  # equal to mem_limit: no swap on top of the limit
        pids_limit=limits.pids,
        ulimits=[Ulimit(name="nofile", soft=4096, hard=4096), Ulimit(name="core", soft=0, hard=0)],
        oom_score_adj=500,  # under host memory pressure, an Actor dies before the validator
        ipc_mode="private",
        init=True,  # tini as PID 1 reaps zombies (fork bombs) and forwards SIGTERM
        # affinetes asks for restart "always": a crashing Actor must stay dead and be seen as dead.
        restart_policy={"Name": "no"},
        tty=False,
        stdin_open=False,
        log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": "1m", "max-file": "1"}),
    )
    if limits.user:
        kwargs["user"] = limits.user
    if spec.device_requests:
        kwargs["device_requests"] = list(spec.device_requests)
    return kwargs


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_thread_environment(limits: DockerSettings) -> dict[str, str]:
    """Thread counts matching the container's CPU limit. Inside a container every host core is
    visible, so numpy's OpenBLAS (and torch) start one thread per host core; under a CPU quota
    smaller than that they use the period's quota early and then wait, throttled, for the next
    period (100 ms by default: `cpu.cfs_period_us`) — tens of milliseconds added to a short call.
    These run-time variables win over an image's own ENV; an Actor that wants other counts sets
    them in its code (e.g. `torch.set_num_threads`)."""
    if not limits.cpu_threads:
        return {}
    threads = str(max(1, int(limits.cpus)))
    return {name: threads for name in THREAD_VARIABLES}


def launch(spec: LaunchSpec, limits: DockerSettings, abort: threading.Event | None = None) -> Any:
    """Start the Actor and wait until it is healthy; returns the affinetes EnvironmentWrapper.

    Raises MinerFault(START_FAILED) when the image's server does not come up, InfraFault when
    Docker itself fails. On failure no container is left running (the caller still removes by
    label, in case the daemon died half-way). Setting `abort` ends the health wait early.
    """
    import affinetes

    _install_patches()
    loop = asyncio.new_event_loop()  # affinetes runs its health wait on this thread's loop
    asyncio.set_event_loop(loop)
    watch = _StartWatch(deadline=time.monotonic() + spec.start_timeout, timeout=spec.start_timeout, abort=abort)
    _scope.watch = watch
    try:
        env = affinetes.load_env(
            image=spec.image_id,
            mode="docker",
            container_name=spec.name,
            env_vars=dict(spec.env) or None,
            env_type=_FUNCTION_BASED,  # skip the label lookup; our wrapper is function-based
            force_recreate=True,
            pull=False,  # the runtime resolved (and, if allowed, pulled) the image already
            mem_limit=limits.memory,
            cpu_limit=str(limits.cpus),
            cleanup=True,
            **hardening(spec, limits),
        )
        backend = env._backend
        # The start-up httpx client belongs to this thread's loop; AffinetesSession installs its
        # own capped client for calls, so close this one here.
        loop.run_until_complete(backend._http_executor.client.aclose())
        # Restart policy is "no", so affinetes' per-call restart probe (a blocking Docker API
        # call on the event loop before every call) has nothing to find: switch it off.
        backend._container_started_at = None
        return env
    except (MinerFault, InfraFault):
        raise
    except Exception as exc:  # noqa: BLE001 - classified below
        raise _classify(exc, watch, spec) from None
    finally:
        _scope.watch = None
        asyncio.set_event_loop(None)
        loop.close()


def _classify(exc: BaseException, watch: _StartWatch, spec: LaunchSpec) -> Exception:
    if watch.failure:
        return MinerFault(FaultKind.START_FAILED, watch.failure)
    text = " | ".join(one_line(e) for e in exception_chain(exc))
    if "not found. Build it first" in text or "No such image" in text:
        return InfraFault(f"image {spec.image_id[:19]} is not in the local image store")
    if "Failed to connect to Docker daemon" in text:
        return InfraFault(f"Docker daemon unreachable: {one_line(text)}")
    if "Container failed to start" in text:
        return MinerFault(FaultKind.START_FAILED, "the container exited as soon as it started")
    if any(s in text for s in ("OCI runtime", "executable file not found", "exec format error", "no such file or directory")):
        return MinerFault(FaultKind.START_FAILED, f"the image's command cannot run: {one_line(text)}")
    said = _daemon_said(exc)  # dockerd's own words, not the request URL around them
    if "could not select device driver" in said:
        return InfraFault(f"the Docker daemon cannot give the Actor a GPU: {said} (install the NVIDIA Container "
                          f"Toolkit for this daemon, or set SUBNET_DOCKER_GPUS=none)")
    return InfraFault(f"starting the Actor container failed: {one_line(said or text, 300)}")


def _daemon_said(exc: BaseException) -> str:
    """The daemon's error message (docker's APIError `explanation`) anywhere in the chain, or ""."""
    found = next((e for e in exception_chain(exc) if getattr(e, "explanation", None)), None)
    return one_line(found.explanation, 300) if found is not None else ""



def _describe_exit(container: Any) -> str:
    state = container.attrs.get("State", {})
    if state.get("OOMKilled"):
        return "OOM-killed at start (the memory limit, SUBNET_DOCKER_MEMORY)"
    why = f"exited at start with code {state.get('ExitCode')}"
    try:
        tail = container.logs(tail=5).decode("utf-8", "replace").strip().splitlines()
    except Exception:  # noqa: BLE001 - logs are a nicety
        tail = []
    return f"{why}: {one_line(tail[-1])[:160]}" if tail else why


def _install_patches() -> None:
    global _patched
    with _patch_lock:
        if _patched:
            return
        from affinetes.backends.local import LocalBackend

        original_detect = LocalBackend._detect_runtime_environment
        original_wait = LocalBackend._wait_for_http_ready

        def detect(self: Any) -> str:
            if getattr(_scope, "watch", None) is not None:
                return "host"  # reach the container by its IP on the network we gave it
            return original_detect(self)

        async def wait(self: Any, timeout: int = 60) -> bool:
            watch = getattr(_scope, "watch", None)
            if watch is None:
                return await original_wait(self, timeout)
            return await _wait_healthy(self, watch)

        LocalBackend._detect_runtime_environment = detect
        LocalBackend._wait_for_http_ready = wait
        logging.getLogger("affinetes").addFilter(_quiet_inside_launch)
        _patched = True


def _quiet_inside_launch(record: logging.LogRecord) -> bool:
    # Start failures are reported once, as a named fault; affinetes' own error lines would
    # repeat them with tracebacks on stderr.
    return getattr(_scope, "watch", None) is None


async def _wait_healthy(backend: Any, watch: _StartWatch) -> bool:
    url = f"{backend._http_executor.base_url}/health"
    async with httpx.AsyncClient() as client:
        while True:
            remaining = watch.deadline - time.monotonic()
            try:
                response = await client.get(url, timeout=max(0.2, min(2.0, remaining)))
                if response.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            container = backend._container
            container.reload()  # blocking, but this is the launch thread's own loop
            if container.status != "running":
                watch.failure = _describe_exit(container)
                return False
            if watch.abort is not None and watch.abort.is_set():
                watch.failure = "start cancelled by the validator"
                _kill(container)
                return False
            if time.monotonic() >= watch.deadline:
                watch.failure = f"no healthy server on port {ACTOR_PORT} within {watch.timeout:g}s"
                _kill(container)  # affinetes would SIGTERM and wait 10 s; a hostile image may ignore it
                return False
            await asyncio.sleep(0.25)


def _kill(container: Any) -> None:
    try:
        container.kill()
    except Exception:  # noqa: BLE001 - already gone is fine; the caller removes by label
        pass
