"""On a (twin) Vast instance the Actor's public port answers 401 to anyone without the instance's
token, while the runtime's own session, which carries it, is served."""

from __future__ import annotations

import httpx

from envs_factory import make_env
from subnet.protocol import Submission
from subnet.runtime.process import ProcessRuntime
from subnet.twins.vast import VastTwin
from subnet.twins.vast.offers import vast_offer
from subnet.util import aio

from vast_support import KEY, digest_of, image_of, runtime_for


def test_a_call_without_the_instance_token_gets_401(tmp_path):
    env_dir = make_env(tmp_path / "envs", "honest", "m1")
    with VastTwin(runtime=ProcessRuntime(start_timeout=30), resolve={image_of(1): str(env_dir)}.__getitem__,
                  time_scale=30.0, offers=[vast_offer(401, "RTX A4000", "0.20", start_s=30)], api_key=KEY) as twin:
        runtime, _ = runtime_for(tmp_path / "home", twin.base_url)

        async def scene():
            async with runtime.open(Submission(1, "hk1", image_of(1), digest_of(1))) as session:
                (iid,) = list(twin.instances)
                row = twin.instance_row(iid)
                url = f"http://{row['public_ipaddr']}:{row['ports']['8000/tcp'][0]['HostPort']}"
                async with httpx.AsyncClient(timeout=10) as stranger:
                    refused = [(await stranger.get(f"{url}/health", headers=h)).status_code for h in
                               ({}, {"Authorization": "Bearer guess"}, {"Authorization": f"Bearer {KEY}"})]
                    refused.append((await stranger.post(f"{url}/call", json={"method": "evaluate"})).status_code)
                answer = await session.call("evaluate", {"task_key": "ab" * 32, "miner_key": "cd" * 32, "n": 16,
                                                         "depth": 2}, timeout=20)
                return refused, answer

        refused, answer = aio.run(scene())
        assert refused == [401, 401, 401, 401]
        assert len(answer["row_sums"]) == 16
        assert twin.instances == {}
