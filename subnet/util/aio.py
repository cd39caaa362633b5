"""Run a coroutine to completion on a fresh event loop, correctly even under nest_asyncio.

affinetes applies `nest_asyncio` globally on import. Its patched `asyncio.run` and
`run_until_complete` never install the loop's async-generator hooks, so generators left half-read
(an answer cut off at the size cap, a call cancelled at its deadline) are finalised outside the
loop and fail noisily. `run_forever` does install them; this runner drives the loop through it
and shuts generators down before closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")


def run(main: Awaitable[T]) -> T:
    loop = asyncio.new_event_loop()
    previous = _current_loop()
    asyncio.set_event_loop(loop)
    try:
        task = asyncio.ensure_future(main, loop=loop)
        task.add_done_callback(lambda _: loop.stop())
        loop.run_forever()
        if not task.done():  # stopped from elsewhere (a signal handler): cancel and wait
            task.cancel()
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        return task.result()
    finally:
        _shutdown(loop)
        asyncio.set_event_loop(previous)


def _current_loop():
    try:
        return asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        return None


def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a daemon thread of its own, awaited without holding the event loop.

    For blocking work that may wait a long time on something outside the process (a state file
    locked by another process, retried with backoff): the loop keeps handling signals meanwhile,
    and, unlike `asyncio.to_thread`'s pool, a thread still waiting never holds the process's exit.
    Cancelling the await abandons the result, not the work."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def work() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop closed while this waited: nobody is left to tell
            pass

    threading.Thread(target=work, name=getattr(fn, "__name__", "work"), daemon=True).start()
    return await done


async def settled(job: Future) -> Any:
    """Wait for a thread's job without tying it to this wait: cancelling the wait leaves the job
    running, and a job that ends after the event loop closed is simply not reported to it."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def deliver(done: Future) -> None:
        if not waiter.done():
            if done.exception() is not None:
                waiter.set_exception(done.exception())
            else:
                waiter.set_result(done.result())

    def notify(done: Future) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(deliver, done)

    job.add_done_callback(notify)
    return await waiter
