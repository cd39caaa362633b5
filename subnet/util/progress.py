"""Progress of long steps — image builds in dry runs, image pulls in validator rounds — for the
person at a terminal and for logs.

Code doing the work calls `step(who, what)` (and `step(who, what, done=True)` at the end). With
no listener each call is one INFO log line (logger `subnet.progress`); a terminal front end
installs a listener with `listening()` (the CLI's rich display) and then owns the output.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Callable, Iterator

log = logging.getLogger("subnet.progress")

Listener = Callable[[str, str, bool], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def step(who: str, what: str, done: bool = False) -> None:
    """Report a step of a long job (`who`: e.g. "uid 3 my-env"); safe from any thread."""
    with _lock:
        listeners = list(_listeners)
    if not listeners:
        log.info("%s: %s", who, what)
    for listener in listeners:
        listener(who, what, done)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
