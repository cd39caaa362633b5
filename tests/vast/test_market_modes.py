"""`--mode cloud` through the real CLI and factory: an operator with only a Vast key, only a Basilica
token, or both runs the same validator (`subnet validator run --mode cloud` on the devchain, both
twins running the miners' env folders for real), and `subnet dry-run --mode cloud` against both
twins. The keys are canaries: neither reaches an Actor's environment or a line the validator prints."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from envs_factory import make_env
from subnet.config import Settings
from subnet.runtime.factory import RuntimeUnavailable, cloud_runtime
from subnet.runtime.process import ProcessRuntime
from subnet.twins.basilica_twin import BasilicaTwin, offering
from subnet.twins.deployment_host import ActorHost
from subnet.twins.vast import VastTwin
from subnet.twins.vast.offers import vast_offer

CAP = Decimal("0.30")
VAST_OFFERS = [vast_offer(400 + i, "RTX A4000", "0.08", start_s=30) for i in range(4)] + [
    vast_offer(420, "RTX A4000", "0.50", start_s=1)]  # over the cap, and fast
BASILICA_BOOK = [offering("b-a4000", "RTX-A4000", "0.16"), offering("b-pricey", "RTX-A4000", "0.45")]
CREDENTIALS = ("BASILICA_API_TOKEN", "BASILICA_API_KEY", "BASILICA_API_URL", "VAST_API_KEY", "VAST_URL",
               "BASILICA_MAX_HOURLY_RATE", "BASILICA_ALLOWED_GPU_TYPES", "XDG_CONFIG_HOME")


def image(uid: int) -> str:
    return f"docker.io/miner{uid}/env@sha256:" + f"{uid:02x}" * 32


@pytest.fixture
def clean(monkeypatch, tmp_path):
    """No credential anywhere but where a test puts it (no keyring, an empty vastai config folder)."""
    for var in CREDENTIALS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setitem(sys.modules, "keyring", None)
    monkeypatch.setenv("SUBNET_MAX_HOURLY_RATE", str(CAP))
    monkeypatch.setenv("SUBNET_ALLOWED_GPU_TYPES", "RTX-A4000:ondemand:1")
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.mark.parametrize("have", [("vast",), ("basilica",), ("basilica", "vast")])
def test_cloud_mode_uses_the_providers_it_has_credentials_for(clean, tmp_path, caplog, have):
    with BasilicaTwin(token="b-token", offerings=BASILICA_BOOK) as basilica, \
            VastTwin(offers=VAST_OFFERS, api_key="v-key") as vast:
        if "basilica" in have:
            clean.setenv("BASILICA_API_URL", basilica.url)
            clean.setenv("BASILICA_API_TOKEN", "b-token")
        if "vast" in have:
            clean.setenv("VAST_URL", vast.base_url)
            clean.setenv("VAST_API_KEY", "v-key")
        with caplog.at_level(logging.WARNING):
            runtime = cloud_runtime(Settings(home=tmp_path / "home"))
    assert runtime.name == "cloud" and runtime.provider_names == list(have)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("subnet")]
    if len(have) == 2:
        assert lines == []
    else:  # one line says which provider runs alone and why the other is missing
        assert len(lines) == 1 and lines[0].startswith(f"cloud mode: {have[0]} alone (")
        assert ("BASILICA_API_TOKEN" if have == ("vast",) else "VAST_API_KEY") in lines[0]


def test_cloud_mode_without_any_credential_says_so_in_one_line(clean, tmp_path):
    with pytest.raises(RuntimeUnavailable) as raised:
        cloud_runtime(Settings(home=tmp_path / "home"))
    text = str(raised.value)
    assert text.startswith("cloud mode needs a Basilica token or a Vast key: ") and "\n" not in text
    assert "BASILICA_API_TOKEN" in text and "VAST_API_KEY" in text


PROBE = '''
import json, os
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen-env.json"), "a") as out:
    out.write(json.dumps(dict(os.environ)) + "\\n")
'''


@pytest.fixture
def world(tmp_path):
    """Both twins running the miners' env folders, the devchain with an honest and a wrong miner
    committed, and the validator's environment (both keys canaries)."""
    root = tmp_path / "envs"
    envs = {1: make_env(root, "honest", "honest"), 2: make_env(root, "wrong", "wrong")}
    probe = envs[1] / "env.py"
    probe.write_text(PROBE + probe.read_text())
    resolve = {image(u): str(p) for u, p in envs.items()}.__getitem__
    vast_key, basilica_token = "canary-v-" + os.urandom(10).hex(), "canary-b-" + os.urandom(10).hex()
    with BasilicaTwin(token=basilica_token, offerings=BASILICA_BOOK,
                      actor_host=ActorHost(ProcessRuntime(start_timeout=30), resolve=resolve)) as basilica, \
            VastTwin(runtime=ProcessRuntime(start_timeout=30), resolve=resolve, time_scale=30.0, offers=VAST_OFFERS,
                     api_key=vast_key) as vast:
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
        env |= {"SUBNET_HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
                "SUBNET_N": "64", "SUBNET_DEPTH": "2", "SUBNET_TASKS": "3", "VAST_POLL": "0.2",
                "SUBNET_MAX_HOURLY_RATE": str(CAP), "SUBNET_ALLOWED_GPU_TYPES": "RTX-A4000:ondemand:1",
                "BASILICA_REQUESTS_PER_MINUTE": "0", "BASILICA_BACKOFF": "0.01"}
        keys = {"vast": {"VAST_URL": vast.base_url, "VAST_API_KEY": vast_key},
                "basilica": {"BASILICA_API_URL": basilica.url, "BASILICA_API_TOKEN": basilica_token}}
        for uid in envs:
            done = subprocess.run([sys.executable, "-m", "subnet", "miner", "commit", image(uid), "--network",
                                   "devchain", "--wallet.name", f"miner{uid}", "--json"],
                                  capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
        yield basilica, vast, env, keys, envs[1] / "seen-env.json", tmp_path


@pytest.mark.parametrize("have, rented_on", [(("vast",), "vast"), (("basilica",), "basilica"),
                                             (("basilica", "vast"), "vast")])
def test_validator_run_in_cloud_mode_with_either_or_both_credentials(world, have, rented_on):
    """The same command whatever the operator holds; with both, Vast's $0.08/h box is the cheaper per
    evaluation than Basilica's $0.16/h (priors: 300 s vs 180 s to start, 30 s busy)."""
    basilica, vast, env, keys, seen, cwd = world
    for provider in have:
        env = env | keys[provider]
    done = subprocess.run([sys.executable, "-m", "subnet", "validator", "run", "--network", "devchain",
                           "--wallet.name", "validator", "--mode", "cloud", "--once", "--json"],
                          capture_output=True, text=True, env=env | {"PYTHONWARNINGS": "always::ResourceWarning"},
                          timeout=240, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "unclosed" not in done.stderr.lower(), done.stderr[-3000:]  # every provider's client closed at stop
    report = json.loads(done.stdout.strip().splitlines()[-1])
    miners = {m["hotkey"]: m for m in report["miners"]}
    assert report["mode"] == "cloud"
    assert_choice_recorded(report["compute"], rented_on, env, cwd)
    assert miners["miner1/default"]["verified"] == 3 and miners["miner1/default"]["weight"] == 1.0
    assert miners["miner2/default"]["faults"] == {"wrong_answer": 3} and miners["miner2/default"]["weight"] == 0
    posts = basilica.requests("POST", "/deployments")
    if rented_on == "vast":
        assert len(vast.created) == 2 and posts == []
        assert {c.offer_id for c in vast.created} <= {400, 401, 402, 403}  # never the $0.50 box over the cap
    else:
        assert len(posts) == 2 and vast.created == []
    assert vast.instances == {} and basilica.deployments == {}  # none outlives its round
    secrets = [v for p in have for k, v in keys[p].items() if "KEY" in k or "TOKEN" in k]
    assert all(s not in done.stdout + done.stderr for s in secrets)  # never in a line the validator prints
    for actor_env in (json.loads(line) for line in seen.read_text().splitlines()):
        assert all(s not in json.dumps(actor_env) for s in secrets)


def assert_choice_recorded(compute: dict, provider: str, env: dict, cwd) -> None:
    """The round's report names its provider choice, and `subnet validator status` shows it (text, --json)."""
    assert compute["provider"] == provider and compute["offer"].startswith(f"{provider}:")
    assert 0 < compute["hourly_usd"] <= float(CAP) and compute["cost_per_eval"] > 0
    assert f"${compute['cost_per_eval']:.5f}/eval" in compute["why"] and compute["left_out"] == {}
    assert compute["placed"] == {provider: 2}  # both miners started where the best boxes were
    status = [sys.executable, "-m", "subnet", "validator", "status"]
    shown = subprocess.run([*status, "--json"], capture_output=True, text=True, env=env, timeout=60, cwd=cwd)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["compute"] == compute
    text = subprocess.run(status, capture_output=True, text=True, env=env | {"COLUMNS": "80"}, timeout=60, cwd=cwd)
    shown_text = " ".join(text.stdout.split())
    assert f"last round's best GPU: {compute['offer']}, {compute['why']}; placed 2 on {provider}" in shown_text


def test_dry_run_in_cloud_mode_runs_on_the_cheaper_twin_and_pays_honest_only(tmp_path):
    root = tmp_path / "envs"
    envs = [make_env(root, "honest"), make_env(root, "wrong")]
    args = [a for e in envs for a in ("--env", str(e))]
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS and not k.startswith("SUBNET_")}
    done = subprocess.run([sys.executable, "-m", "subnet", "dry-run", "--mode", "cloud", "--json", *args,
                           "--tasks", "3", "--n", "64", "--depth", "2"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    miners = {m["env"]: m for m in report["miners"]}
    assert report["mode"] == "cloud"
    assert miners["honest"]["verified"] == 3 and miners["honest"]["weight"] == 1.0
    assert miners["wrong"]["faults"] == {"wrong_answer": 3} and miners["wrong"]["weight"] == 0
    cloud = report["cloud"]
    assert len(cloud["choices"]) == 1 and cloud["choices"][0].startswith("round's best box on ")
    compute = report["compute"]  # the round's report carries the same choice
    assert cloud["choices"][0].startswith(f"round's best box on {compute['provider']}: {compute['offer']}, {compute['why']}")
    assert compute["hourly_usd"] <= cloud["providers"]["vast"]["cap"] and compute["cost_per_eval"] > 0
    assert sum(compute["placed"].values()) == 2  # each miner counted where it started
    assert cloud["deployments_created"] == cloud["deployments_deleted"] == 2 and cloud["deployments_left"] == 0
    vast = cloud["providers"]["vast"]
    assert all(p <= vast["cap"] for p in vast["hourly_prices"])  # nothing above the cap


def test_a_refused_vast_key_at_start_leaves_basilica_alone_with_one_line(clean, tmp_path, caplog):
    with BasilicaTwin(token="b-token", offerings=BASILICA_BOOK) as basilica, \
            VastTwin(offers=VAST_OFFERS, api_key="v-key") as vast:
        clean.setenv("BASILICA_API_URL", basilica.url)
        clean.setenv("BASILICA_API_TOKEN", "b-token")
        clean.setenv("VAST_URL", vast.base_url)
        clean.setenv("VAST_API_KEY", "canary-refused-3e9d")  # not the account's key: 401
        with caplog.at_level(logging.WARNING):
            runtime = cloud_runtime(Settings(home=tmp_path / "home"))
    assert runtime.provider_names == ["basilica"]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("subnet")]
    assert len(lines) == 1 and lines[0].startswith("cloud mode: basilica alone (Vast: "), lines
    assert "canary-refused-3e9d" not in lines[0]
