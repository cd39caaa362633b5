"""What a hostile registry costs a validator: memory while reading a never-ending manifest, and the
time a manifest sent one byte per second holds the registry check. Prints numbers, asserts nothing.

    .venv/bin/python scripts/bench_hostile_registry.py                        # this checkout
    PYTHONPATH=/path/to/other/checkout .venv/bin/python scripts/bench_hostile_registry.py   # another one

Everything is on loopback (tests/hostile_registry.py). The endless case stops itself once the
process has grown by `--rss-cap-mib` (an unbounded reader would otherwise take the machine) or after
`--seconds`; the slow case gives up after `--slow-cap` seconds. Uses the client's own defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import subnet  # noqa: E402
from hostile_registry import HostileRegistry, _rss  # noqa: E402
from subnet.protocol.commitment import parse_image_ref  # noqa: E402
from subnet.registry.client import RegistryClient  # noqa: E402


async def _read(reference: str, limit_s: float) -> str:
    client = RegistryClient()
    try:
        await asyncio.wait_for(client.facts(parse_image_ref(reference)), limit_s)
        return "read"
    except asyncio.TimeoutError:
        return f"still reading after {limit_s:g}s (the probe gave up)"
    except Exception as exc:  # noqa: BLE001 - the outcome is the measurement
        return f"{type(exc).__name__}: {str(exc)[:140]}"
    finally:
        await client.close()


def endless(registry: HostileRegistry, seconds: float, cap_mib: int) -> None:
    start = _rss()
    peak = [start]
    over = threading.Event()

    def sample() -> None:
        while not over.is_set():
            peak[0] = max(peak[0], _rss())
            if peak[0] - start > cap_mib << 20:
                over.set()
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()

    async def bounded() -> str:
        reading = asyncio.ensure_future(_read(registry.reference("endless/env"), seconds))
        while not reading.done():
            if over.is_set():
                reading.cancel()
                return f"stopped by the probe at +{cap_mib} MiB"
            await asyncio.sleep(0.01)
        return reading.result()

    outcome = asyncio.run(bounded())
    wall = time.monotonic() - began
    over.set()
    sampler.join()
    growth = (peak[0] - start) / (1 << 20)
    print(f"endless chunked manifest: {outcome}")
    print(f"  wall {wall:.2f} s, RSS growth {growth:.0f} MiB ({growth / max(wall, 1e-3):.0f} MiB/s)")


def slow(registry: HostileRegistry, cap_s: float) -> None:
    began = time.monotonic()
    outcome = asyncio.run(_read(registry.reference("slow/env"), cap_s))
    print(f"manifest at 1 byte/s ({len(registry.slow.manifest)} bytes): {outcome}")
    print(f"  the registry check was held {time.monotonic() - began:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="longest the endless case runs")
    parser.add_argument("--rss-cap-mib", type=int, default=1536, help="the endless case stops past this growth")
    parser.add_argument("--slow-cap", type=float, default=90.0, help="longest the slow case is waited for")
    args = parser.parse_args()
    print(f"subnet from {Path(subnet.__file__).parent}")
    with HostileRegistry(byte_every_s=1.0) as registry:
        endless(registry, args.seconds, args.rss_cap_mib)
        slow(registry, args.slow_cap)


if __name__ == "__main__":
    main()
