"""The torch reference env: bit-identical inputs to the numpy spec, TF32 off, answers verified."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from subnet.challenges.counter_rng import numpy_matrix
from subnet.challenges.matrix_chain import MatrixChain

ENVS = Path(__file__).resolve().parent.parent / "envs"


@pytest.fixture(scope="module")
def torch_env(torch):
    spec = importlib.util.spec_from_file_location("matrix_chain_torch_env", ENVS / "matrix-chain-torch" / "env.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def devices(torch) -> list:
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("n", [1, 33, 256])
def test_torch_generator_is_bit_identical_to_numpy_on_every_device(torch, torch_env, n):
    key = bytes(range(32))
    expected = numpy_matrix(key, "W2", n)
    for device in devices(torch):
        got = torch_env.Generator(device).matrix(key, "W2", n)
        assert got.dtype == torch.float32 and got.device.type == device.type
        assert np.array_equal(got.cpu().numpy(), expected), device


def test_tf32_is_off_and_the_env_picks_cuda_when_present(torch, torch_env):
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.get_float32_matmul_precision() == "highest"
    assert torch_env.pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_torch_env_answers_are_verified_for_several_miners(torch_env):
    challenge = MatrixChain(n=192, depth=3)
    actor = torch_env.Actor()
    for task in challenge.make_tasks(b"torch", 2):
        claims = []
        for hotkey in ("a", "b", "c"):
            answer = actor.evaluate(task_id=task.index, **challenge.payload(task, hotkey))
            assert len(answer["row_sums"]) == 192 and answer["device"] == str(actor.gen.device)
            claims.append(challenge.receive(task, hotkey, answer))
        assert all(v.ok for v in challenge.verify(task, claims))


def test_torch_env_refuses_another_version(torch_env):
    with pytest.raises(ValueError, match="matrix-chain/2"):
        torch_env.Actor().evaluate(version="matrix-chain/1", task_key="00" * 32, miner_key="00" * 32, n=8, depth=1)
