"""Stopping the validator on SIGTERM or SIGINT: no leaked Actor, no half-written round, exit 0.

On the first signal the validator stops taking work: the running round is cancelled, which
abandons its in-flight calls and runs every runtime's shielded teardown (Docker containers and
networks, Basilica deployments). Teardown gets `grace_s` seconds (a second signal cuts that
short); after that whatever this run still owns in Docker is removed by label. The round is marked abandoned (it ended, it is never counted),
results kept in memory after a failed write get a last try, and `serve` returns one line.

The handlers are installed explicitly on the event loop: as PID 1 in a container (no init), a
process that has not installed a SIGTERM handler never sees `docker stop`'s SIGTERM at all.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Callable

from subnet.state.db import StateError
from subnet.util.aio import in_thread
from subnet.validator.loop import ValidatorLoop
from subnet.validator.report import RoundReport

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STATE_WAIT_S = 10.0  # the longest a stop waits to mark its round in a state file locked by another process


class StoppedEarly(Exception):
    """A stop signal arrived before the first round began (nothing was started yet)."""


def stop_before_serving() -> None:
    """Until `serve` takes over, a stop signal ends start-up cleanly (and reaches PID 1 at all)."""

    def handler(signum: int, _frame: object) -> None:
        raise StoppedEarly(f"stopped by {signal.Signals(signum).name} before the first round")

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


async def serve(
    vloop: ValidatorLoop, interval_s: float, on_report: Callable[[RoundReport], None], once: bool, grace_s: float
) -> str:
    """Run rounds until done or signalled. Returns "" when done, else the one line to print."""
    loop = asyncio.get_running_loop()
    work = asyncio.ensure_future(vloop.run_forever(interval_s, on_report, once=once))
    received: list[str] = []
    stopping, hurry = asyncio.Event(), asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if received:
            log.warning("%s again: removing this run's Actors by label now", sig.name)
            hurry.set()
            return
        received.append(sig.name)
        log.info("%s: stopping: no new work; abandoning the round in flight", sig.name)
        work.cancel()
        stopping.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    stopper = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not received:
            return work.result() or ""  # raises what the loop raised
        hurried = asyncio.ensure_future(hurry.wait())
        await asyncio.wait({work, hurried}, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
        hurried.cancel()
        if not work.done() and not hurry.is_set():
            log.warning("teardown still running after %.0fs: removing this run's Actors by label", grace_s)
        return await _wind_down(vloop, received[0])
    finally:
        stopper.cancel()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        if work.done():  # a teardown still running (hurried or past grace) keeps its clients
            await vloop.close_runtime()


async def _wind_down(vloop: ValidatorLoop, signame: str) -> str:
    forced = await asyncio.to_thread(vloop.remove_leftovers)
    if forced:
        log.warning("removed %d Actor object(s) the round's teardown had not", forced)
    try:
        # A state file another process holds locked must not keep a stopped validator alive: the
        # mark gets a bounded wait, and a round left unmarked is marked at the next start.
        abandoned = await asyncio.wait_for(in_thread(vloop.abandon_unfinished, f"stopped by {signame}"),
                                           timeout=STATE_WAIT_S)
    except StateError as exc:
        return f"stopped by {signame}; could not mark the round abandoned: {exc}"
    except asyncio.TimeoutError:
        return (f"stopped by {signame}; the state file stayed locked for {STATE_WAIT_S:.0f}s, so the round is "
                "marked abandoned at the next start; every Actor removed")
    unwritten = vloop.unwritten_rounds()
    what = f"round {', '.join(map(str, abandoned))} abandoned" if abandoned else "no round left unfinished"
    lost = f"; results of round(s) {', '.join(map(str, unwritten))} could not be written" if unwritten else ""
    return f"stopped by {signame}: {what}, every Actor removed{lost}"
