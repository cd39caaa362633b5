"""Pick and build the runtime for a mode name (process, docker, basilica, vast, cloud) from the settings."""

from __future__ import annotations

from subnet.config import Settings


class RuntimeUnavailable(Exception):
    """The requested runtime cannot run here; the message says why and what to do."""


def docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no daemon"
        return False


def make_runtime(mode: str, settings: Settings, allow_local: bool = False):
    """The runtime for submissions that are digest-pinned image references (or env folders in
    process mode)."""
    if mode == "process":
        from subnet.runtime.process import ProcessRuntime

        return ProcessRuntime(settings.start_timeout, settings.max_response_bytes, settings.forward_env)
    if mode == "docker":
        if not docker_answers():
            raise RuntimeUnavailable("no Docker daemon answers (is it running, and may this user use it?)")
        from subnet.runtime.docker import DockerRuntime

        return DockerRuntime(settings, allow_local=allow_local)
    if mode == "basilica":
        return basilica_runtime(settings)
    if mode == "vast":
        return vast_runtime(settings)
    if mode == "cloud":
        return cloud_runtime(settings)
    raise RuntimeUnavailable(f"unknown mode {mode!r}")


def basilica_runtime(settings: Settings):
    """A Basilica runtime with the spend ledger in the state DB; forgotten deployments reclaimed."""
    from subnet.compute.basilica import BasilicaGPUClient
    from subnet.compute.deployment_client import DeploymentClient
    from subnet.compute.errors import BasilicaError
    from subnet.compute.ledger import Ledger
    from subnet.compute.settings import ConfigError, load_settings
    from subnet.runtime.basilica import BasilicaRuntime

    try:
        basilica = load_settings()
        if basilica.api_token is None or not basilica.api_token.get_secret_value().strip():
            # `validator run` has no --api-key option (unlike `subnet gpus`): name what exists.
            raise RuntimeUnavailable("Basilica mode needs an API token: set BASILICA_API_TOKEN in the environment "
                                     "or in .env (create one with `basilica tokens create`; docs/operator.md)")
        client = BasilicaGPUClient(basilica, ledger=Ledger(settings.ledger_path))
        runtime = BasilicaRuntime(DeploymentClient(client), settings)
        reclaimed = runtime.reclaim_forgotten()
    except (ConfigError, BasilicaError) as exc:
        raise RuntimeUnavailable(f"Basilica: {exc}") from None
    if reclaimed:
        import logging

        logging.getLogger(__name__).warning("deleted %d deployment(s) a previous run left behind", len(reclaimed))
    return runtime


def vast_runtime(settings: Settings, key_flag: str | None = None):
    """A Vast runtime for the validator; what an earlier run left behind is destroyed first.
    Raises RuntimeUnavailable with one line naming what to set."""
    from subnet.compute.ledger import Ledger
    from subnet.compute.policy import PolicyFormatError
    from subnet.compute.providers import load_policy
    from subnet.compute.start_budget import StartBudget
    from subnet.compute.vast import VastClient, VastError, resolve_vast_key
    from subnet.runtime.vast import ClientPerLoop, VastRuntime
    from subnet.runtime.vast_settings import VastRuntimeSettings
    from subnet.util.text import one_line

    key = resolve_vast_key(key_flag)
    if not key:
        raise RuntimeUnavailable("Vast mode needs an API key: set VAST_API_KEY (or put it in .env.vast, or run "
                                 "`vastai set api-key`); docs/operator.md")
    try:
        policy = load_policy()
    except PolicyFormatError as exc:
        raise RuntimeUnavailable(str(exc)) from None
    own = VastRuntimeSettings()
    runtime = VastRuntime(ClientPerLoop(lambda: VastClient(key)), settings, Ledger(settings.ledger_path), policy,
                          budget=StartBudget(own.start_timeout, settings.start_timeout), poll_s=own.poll,
                          disk_gb=own.disk_gb, secrets_to_keep=[key])
    try:
        import asyncio

        reclaimed = asyncio.run(runtime.reclaim(close=True))
    except VastError as exc:
        raise RuntimeUnavailable(f"Vast: {one_line(str(exc))}") from None
    if reclaimed:
        import logging

        logging.getLogger(__name__).warning("destroyed %d Vast instance(s) a previous run left behind", len(reclaimed))
    return runtime


def cloud_runtime(settings: Settings, key_flag: str | None = None):
    """Every provider this validator has credentials for, each miner on the cheapest box per evaluation
    left across them (`subnet.runtime.market`). With one provider's credentials only, that one alone (one line says so)."""
    import logging

    from subnet.compute.ledger import Ledger
    from subnet.compute.policy import PolicyFormatError
    from subnet.compute.providers import load_policy
    from subnet.compute.selection import learn_starts, samples_from_ledger
    from subnet.runtime.market import MarketRuntime

    try:
        policy = load_policy()
    except PolicyFormatError as exc:
        raise RuntimeUnavailable(str(exc)) from None
    built, missing = [], {}
    builders = (("basilica", lambda: basilica_runtime(settings)), ("vast", lambda: vast_runtime(settings, key_flag)))
    for name, build in builders:
        try:
            built.append(build())
        except RuntimeUnavailable as exc:
            missing[name] = str(exc)
    if not built:
        raise RuntimeUnavailable("cloud mode needs a Basilica token or a Vast key: " + "; ".join(missing.values()))
    for why in missing.values():
        logging.getLogger(__name__).warning("cloud mode: %s alone (%s)", built[0].name, why)
    ledger = Ledger(settings.ledger_path)
    return MarketRuntime(built, policy, settings, lambda: learn_starts(samples_from_ledger(ledger.entries())))


def fit_refusal(runtime, settings: Settings, dry_run: bool = False) -> str:
    """Why the Docker runtime cannot run this task size, in one line naming what to set, or "".

    With GPUs, a GPU must hold the task; without, the Actor's memory limit and CPUs must
    (arithmetic: `subnet.runtime.sizing`). Blocking (reads the daemon's GPUs once); raises
    InfraFault when the GPU settings cannot be honoured."""
    from subnet.runtime.sizing import cpu_fit_refusal, gpu_fit_refusal

    pool = runtime.gpu_pool()
    if pool is not None:
        return gpu_fit_refusal(settings.n, [g.memory_gib for g in pool.gpus], "--n" if dry_run else "SUBNET_N")
    limits = runtime.limits
    smaller = "--n 256 --depth 4" if dry_run else "SUBNET_N=256 SUBNET_DEPTH=4"
    return cpu_fit_refusal(settings.n, settings.depth, limits.memory, limits.cpus, settings.call_timeout, smaller)
