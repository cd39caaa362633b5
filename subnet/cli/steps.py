"""Long steps (image builds and pulls) on a terminal: one live line per job under a rich Progress,
and one permanent line when a job finishes. Off a terminal the steps are log lines instead
(`subnet.progress`)."""

from __future__ import annotations

import threading

from rich.progress import Progress, TaskID


class RichSteps:
    """A `subnet.progress` listener drawing into `progress` (rich is thread-safe for updates)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._jobs: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __call__(self, who: str, what: str, done: bool) -> None:
        with self._lock:
            job = self._jobs.get(who)
            if done:
                if job is not None:
                    self.progress.remove_task(job)
                    del self._jobs[who]
                self.progress.console.print(f"{who}: {what}", style="dim", markup=False, highlight=False)
            elif job is None:
                self._jobs[who] = self.progress.add_task(f"{who}: {what}", total=None)
            else:
                self.progress.update(job, description=f"{who}: {what}")
