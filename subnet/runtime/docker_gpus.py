"""NVIDIA GPUs for Docker-mode Actors: found through the daemon, priced by the GPU policy, and
handed out one GPU per Actor at a time (or `SUBNET_DOCKER_ACTORS_PER_GPU` Actors per GPU).

Finding them (`SUBNET_DOCKER_GPUS`):
- `auto` (default): the daemon lists an `nvidia` runtime in `docker info` (what
  `nvidia-ctk runtime configure --runtime=docker` sets up), and `nvidia-smi` on this host names
  the GPUs. Docker itself serves GPU device requests through the NVIDIA Container Toolkit's hook
  (moby `daemon/nvidia_linux.go`: the `nvidia` device driver, capabilities `gpu`/`nvidia`,
  `DeviceIDs` → `NVIDIA_VISIBLE_DEVICES`); `docker info` does not list the GPUs themselves.
- `none`: never give an Actor a GPU.
- `0,1` (device indexes or `GPU-…` UUIDs): exactly these; their type from `nvidia-smi` when it is
  installed, else from `SUBNET_DOCKER_GPU_TYPE` (e.g. when the validator runs in a container).

Recording and pricing: the type is recorded as Basilica spells it (upper case, vendor prefix
dropped: "NVIDIA RTX A4000" → "RTX A4000"). A GPU is used only if the GPU policy allows its type
(`BASILICA_ALLOWED_GPU_TYPES`, matched on letters and digits only, as Basilica's own node labels
are: bigailabs/cathedral `crates/basilica-operator/src/labels.rs` `normalize_gpu_model`, so
"RTX-A4000" matches "RTX A4000"), and is priced at `SUBNET_LOCAL_GPU_PRICE` dollars per hour, or
else at the typical price of the policy entry it matches (the table below, docs/operator.md).
An owned GPU is never preempted, so an on-demand entry's price is preferred to a spot entry's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Sequence

# Typical box prices of the default allowlist's entries, $/h (DESIGN §3.5, docs/operator.md).
TYPICAL_PRICES = {
    "V100:spot:1": 0.05,
    "V100:ondemand:1": 0.15,
    "RTX-A4000:ondemand:1": 0.16,
    "RTX-A4000:ondemand:2": 0.33,
    "RTX-A6000:spot:1": 0.44,
}
NVIDIA_SMI_QUERY = ["--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"]


class GpuUnavailable(Exception):
    """The GPU settings cannot be honoured; the message is one line naming what to set."""


@dataclass(frozen=True)
class LocalGpu:
    device_id: str  # what Docker's DeviceRequest takes: an index or a GPU UUID
    gpu_type: str  # as Basilica spells GPU types, e.g. "RTX A4000", "TESLA V100-SXM2-16GB"
    hourly_price: float  # $/h, from SUBNET_LOCAL_GPU_PRICE or the typical price table
    memory_gib: float | None = None


@dataclass(frozen=True)
class SmiGpu:
    index: str
    uuid: str
    name: str
    memory_gib: float | None


def gpu_type(name: str) -> str:
    """nvidia-smi's name as Basilica records GPU types: upper case, without the vendor prefix."""
    return re.sub(r"^NVIDIA\s+", "", name.strip(), flags=re.IGNORECASE).upper()


def _letters_and_digits(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def has_nvidia_runtime(info: dict) -> bool:
    return "nvidia" in (info.get("Runtimes") or {})


def parse_nvidia_smi(text: str) -> list[SmiGpu]:
    """Rows of `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`,
    e.g. `0, GPU-5b1c…, NVIDIA RTX A4000, 16376` (memory in MiB)."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        memory = float(parts[3]) / 1024 if re.fullmatch(r"\d+(\.\d+)?", parts[3]) else None
        gpus.append(SmiGpu(parts[0], parts[1], parts[2], memory))
    return gpus


def run_nvidia_smi() -> str | None:
    """nvidia-smi's GPU list on this host, or None where it is not installed or fails."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        done = subprocess.run([binary, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def policy_price(kind: str, count: int, policy: Any, local_price: float | None) -> tuple[float | None, str]:
    """(price, "") when the GPU policy allows `count` GPUs of `kind`, else (None, why)."""
    wanted = _letters_and_digits(kind)
    matches = [e for e in policy.allowed if _letters_and_digits(e.gpu) in wanted and e.count == count]
    if not matches:
        return None, f"{kind} x{count} is not in BASILICA_ALLOWED_GPU_TYPES ({policy.describe_allowlist()})"
    if local_price is not None:
        return local_price, ""
    for entry in sorted(matches, key=lambda e: e.spot):  # on-demand first: an owned GPU is never preempted
        if str(entry) in TYPICAL_PRICES:
            return TYPICAL_PRICES[str(entry)], ""
    return None, f"no typical price for {matches[0]}: set SUBNET_LOCAL_GPU_PRICE (dollars per GPU-hour)"


def discover(info: dict, setting: str, type_override: str, local_price: float | None,
             load_policy: Callable[[], Any] | None = None,
             smi: Callable[[], str | None] = run_nvidia_smi) -> list[LocalGpu]:
    """The GPUs Actors may use, per `SUBNET_DOCKER_GPUS`; [] when there are none to use.

    Raises GpuUnavailable (one line, naming the variable to set) when GPUs were asked for
    explicitly but cannot be used, or when every GPU found is refused by the policy."""
    setting = setting.strip()
    if setting.lower() in ("none", "off", ""):
        return []
    explicit = setting.lower() != "auto"
    if not explicit and not has_nvidia_runtime(info):
        return []
    listed = parse_nvidia_smi(smi() or "")
    if explicit:
        chosen = _chosen(setting, listed, type_override)
    elif listed:
        chosen = [(g.index, gpu_type(type_override or g.name), g.memory_gib) for g in listed]
    else:
        raise GpuUnavailable("the Docker daemon has the NVIDIA runtime but nvidia-smi cannot list its GPUs here: "
                             "set SUBNET_DOCKER_GPUS=0,1,… and SUBNET_DOCKER_GPU_TYPE (e.g. 'RTX A4000'), "
                             "or SUBNET_DOCKER_GPUS=none")
    policy = (load_policy or gpu_policy)()  # read only when there are GPUs to judge
    usable, refused = [], []
    for device, kind, memory in chosen:
        price, why = policy_price(kind, 1, policy, local_price)
        if price is None:
            refused.append(f"GPU {device}: {why}")
        else:
            usable.append(LocalGpu(device, kind, price, memory))
    if refused and not usable:
        raise GpuUnavailable(f"{'; '.join(refused)} — allow it there, or set SUBNET_DOCKER_GPUS=none to run without GPUs")
    return usable


def _chosen(setting: str, listed: Sequence[SmiGpu], type_override: str) -> list[tuple[str, str, float | None]]:
    by_id = {g.index: g for g in listed} | {g.uuid.lower(): g for g in listed}
    chosen = []
    for device in (d.strip() for d in setting.split(",") if d.strip()):
        found = by_id.get(device.lower())
        if found is None and not type_override:
            where = "nvidia-smi does not list it" if listed else "nvidia-smi is not available here"
            raise GpuUnavailable(f"SUBNET_DOCKER_GPUS names GPU {device} but {where}: "
                                 f"set SUBNET_DOCKER_GPU_TYPE (e.g. 'RTX A4000') to use it as that type")
        kind = gpu_type(type_override or found.name)
        chosen.append((found.uuid if found and device.lower() == found.uuid.lower() else device, kind,
                       found.memory_gib if found else None))
    return chosen


def gpu_policy() -> Any:
    """The GPU policy (`BASILICA_ALLOWED_GPU_TYPES`); a malformed one is GpuUnavailable in one line."""
    from subnet.compute.settings import ConfigError, load_settings

    try:
        return load_settings().policy()
    except ConfigError as exc:
        raise GpuUnavailable(str(exc)) from None


def device_request(gpu: LocalGpu) -> Any:
    """What `docker run --gpus device=<id>` sends: the nvidia driver, one device, capability gpu."""
    from docker.types import DeviceRequest

    return DeviceRequest(driver="nvidia", device_ids=[gpu.device_id], capabilities=[["gpu"]])


class GpuPool:
    """Hands each Actor a GPU of its own for as long as it runs (or up to `per_gpu` Actors a GPU);
    an Actor that finds none free waits for one. One event loop; `release` never blocks."""

    def __init__(self, gpus: Sequence[LocalGpu], per_gpu: int = 1) -> None:
        self.gpus = list(gpus)
        self.per_gpu = max(1, per_gpu)
        self._users = {g.device_id: 0 for g in self.gpus}
        self._waiters: list[asyncio.Future] = []

    async def acquire(self) -> LocalGpu:
        while (gpu := self._least_used()) is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        self._users[gpu.device_id] += 1
        return gpu

    def release(self, gpu: LocalGpu) -> None:
        self._users[gpu.device_id] -= 1
        for waiter in self._waiters:  # each re-checks; those that find nothing free wait again
            if not waiter.done():
                waiter.set_result(None)

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[LocalGpu]:
        gpu = await self.acquire()
        try:
            yield gpu
        finally:
            self.release(gpu)

    def in_use(self) -> dict[str, int]:
        return dict(self._users)

    def _least_used(self) -> LocalGpu | None:
        free = [g for g in self.gpus if self._users[g.device_id] < self.per_gpu]
        return min(free, key=lambda g: self._users[g.device_id]) if free else None
