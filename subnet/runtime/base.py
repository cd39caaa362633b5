"""The `Runtime` port.

A runtime turns a `Submission` into a running Actor for the length of one `async with` block and
guarantees teardown when the block exits, however it exits. Every real runtime calls the Actor
through affinetes' HTTP executor (`subnet.runtime.affinetes_session`), so the call path, the
response cap and the fault mapping are the same for process, Docker and Basilica.
"""

from __future__ import annotations

from typing import Any, AsyncContextManager, Mapping, Protocol

from subnet.protocol import Submission


class ActorSession(Protocol):
    async def call(self, method: str, kwargs: Mapping[str, Any], timeout: float) -> Any:
        """Call `method` on the Actor; raises MinerFault or InfraFault, never anything else."""
        ...


class Runtime(Protocol):
    name: str

    def open(
        self, submission: Submission, environment: Mapping[str, str] | None = None
    ) -> AsyncContextManager[ActorSession]:
        """Provision the submission's Actor; raises MinerFault/InfraFault if it cannot start.

        `environment`: variables this one Actor receives for this round on top of what the runtime
        always gives (an LLM challenge's OPENAI_BASE_URL and OPENAI_API_KEY); the round engine
        passes it only when there is something to give, so runtimes without it keep working."""
        ...
