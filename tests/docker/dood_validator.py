"""Run inside a container that has the host's docker.sock (like the validator's own image):
open one Actor through DockerRuntime, call it, print one JSON line. Used by test_isolation."""

import asyncio
import json
import sys

from subnet.config import Settings
from subnet.protocol import Submission
from subnet.runtime.docker import DockerRuntime
from subnet.runtime.docker_settings import DockerSettings


async def main(reference: str) -> dict:
    runtime = DockerRuntime(Settings(_env_file=None, start_timeout=30),
                            DockerSettings(_env_file=None, memory="256m"), allow_local=True)
    async with runtime.open(Submission(uid=5, hotkey="dood", source=reference, digest="")) as session:
        answer = await session.call("ping", {}, timeout=10)
    joined = runtime._self_container.id if runtime._self_container is not None else None
    return {"answer": answer, "joined_as": joined, "run": runtime.run_id}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
