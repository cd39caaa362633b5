"""Pay only for what changed, in Basilica mode: through the real basilica SDK against the local
twin, a second round with no changed image creates zero deployments and still sets weights."""

from __future__ import annotations

import pytest

from subnet.util import aio
from subnet.challenges.matrix_chain import MatrixChain
from subnet.chain.devchain import DevChain
from subnet.state.store import Store
from subnet.validator.service import Validator, plan_round

from test_basilica_runtime import envs, image_of, runtime_for, twin  # noqa: F401  (fixtures)

image = image_of


def test_an_unchanged_round_creates_no_deployment(twin, tmp_path):  # noqa: F811
    chain = DevChain(tmp_path / "devchain.sqlite", hotkey="validator")
    chain.register(1, "validator", validator_permit=True)
    for uid in (1, 2):
        chain.register(1, f"miner{uid}")
        chain.as_hotkey(f"miner{uid}").commit(1, image(uid).encode())
    runtime, ledger = runtime_for(tmp_path)
    store = Store(tmp_path / "subnet.sqlite")
    settings = runtime.settings.model_copy(update={"netuid": 1, "tasks": 2, "call_timeout": 20.0})
    validator = Validator(chain, runtime, MatrixChain(n=64, depth=2), settings, store)

    def round_():
        return aio.run(validator.run_round(plan_round(chain.commitments(1), lambda ref: str(ref)), b"seed"))

    first = round_()
    assert len(twin.requests("POST", "/deployments")) == 2
    assert all(m.verified == 2 for m in first.miners), first.miners
    second = round_()
    assert len(twin.requests("POST", "/deployments")) == 2, "an unchanged round must not deploy anything"
    assert second.cached == 2 and second.weights_set.startswith("set for 2 uids")
    assert sum(m.weight for m in second.miners) == pytest.approx(1.0)
    assert twin.deployments == {} and all(e.state == "stopped" for e in ledger.entries("deployment"))
    store.close()
