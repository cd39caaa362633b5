"""`subnet gpus ... --provider`: CLI → real clients → HTTP → both twins; ledger in a temp state DB."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from subnet.cli.gpus import gpus_app
from subnet.compute import ledger as ledger_module
from subnet.compute.ledger import Ledger
from subnet.compute.vast import VastClient
from subnet.state.identity import validator_identity
from subnet.twins.basilica_twin import BasilicaTwin, offering
from subnet.twins.vast import VastTwin, vast_offer

from vast_support import runtime_for

BASILICA_TOKEN = "basilica-canary-71aa"
VAST_KEY = "vast-canary-3f08"
BASILICA_BOOK = [offering("b-a4000", "RTX-A4000", "0.25"), offering("b-pricey", "RTX-A4000", "0.50")]
VAST_BOOK = [vast_offer(201, "RTX A4000", "0.12"), vast_offer(202, "Tesla V100", "0.90", min_bid="0.09"),
             vast_offer(203, "RTX A4000", "0.60")]
_VARS = ("BASILICA_API_TOKEN", "BASILICA_API_KEY", "BASILICA_API_URL", "BASILICA_MAX_HOURLY_RATE",
         "BASILICA_ALLOWED_GPU_TYPES", "SUBNET_MAX_HOURLY_RATE", "SUBNET_ALLOWED_GPU_TYPES", "VAST_API_KEY", "VAST_URL",
         "XDG_CONFIG_HOME")


@pytest.fixture
def twins(monkeypatch, tmp_path):
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.vast_api_key of the developer's
    monkeypatch.setenv("SUBNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "80")
    with BasilicaTwin(token=BASILICA_TOKEN, offerings=BASILICA_BOOK) as basilica, VastTwin(offers=VAST_BOOK,
                                                                                      api_key=VAST_KEY) as vast:
        monkeypatch.setenv("BASILICA_API_URL", basilica.url)
        monkeypatch.setenv("BASILICA_API_TOKEN", BASILICA_TOKEN)
        monkeypatch.setenv("BASILICA_RETRIES", "1")
        monkeypatch.setenv("BASILICA_REQUESTS_PER_MINUTE", "0")
        monkeypatch.setenv("VAST_URL", vast.base_url)
        monkeypatch.setenv("VAST_API_KEY", VAST_KEY)
        yield basilica, vast


def gpus(*args: str):
    return CliRunner().invoke(gpus_app, list(args))


def test_offers_explain_ranks_both_providers_in_80_columns(twins):
    result = gpus("offers", "--explain")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    ranked = [line.split()[1] for line in lines if line.strip()[:1].isdigit() and ":" in line.split()[1]]
    # No history: the priors (Basilica 180 s, Vast 300 s) and the prices decide.
    assert ranked[:3] == ["vast:202", "vast:201", "basilica:b-a4000"]
    text = " ".join(result.stdout.split())  # the explanations wrap at 80 columns
    assert "1. vast:202: $0.09/h × (start 300 s, prior (no starts yet), + busy 300 s)" in text
    assert "refused basilica:b-pricey: box price $0.50/h exceeds SUBNET_MAX_HOURLY_RATE $0.44/h" in text
    assert "203" not in text  # over the cap: Vast's search never returned it
    assert VAST_KEY not in result.output and BASILICA_TOKEN not in result.output


def test_offers_learn_start_times_from_the_ledger(twins, tmp_path, monkeypatch):
    clock = {"t": 1_000.0}
    with monkeypatch.context() as m, Ledger(tmp_path / "home" / "state.sqlite") as ledger:
        m.setattr(ledger_module.time, "time", lambda: clock["t"])
        for i in range(3):  # Vast's A4000 and V100 boxes took 40 minutes to serve; Basilica's 1 minute
            for kind, gpu, seconds in (("instance", "RTX A4000", 2400), ("instance", "Tesla V100", 2400),
                                       ("deployment", "RTX-A4000", 60)):
                name = f"{kind}-{gpu}-{i}"
                ledger.begin(kind, name, gpu_type=gpu, gpu_count=1)
                clock["t"] += seconds
                ledger.mark_active(name, f"r-{name}")
    rows = json.loads(gpus("offers", "--json", "--busy-s", "120", "--ledger", str(tmp_path / "home" / "state.sqlite"))
                      .stdout)
    assert [(r["provider"], r["offer_id"]) for r in rows["ranked"]] == [
        ("basilica", "b-a4000"), ("vast", "202"), ("vast", "201")]
    assert rows["ranked"][0]["start_s"] == 60.0 and rows["ranked"][1]["start_s"] == 2400.0
    assert rows["ranked"][0]["cost_per_eval_usd"] == pytest.approx(0.25 * 180 / 3600)


def test_quota_exhausted_on_vast_gives_one_line_and_basilica_offers(twins):
    _, vast = twins
    vast.search_quota(0)
    result = gpus("offers", "--json")
    assert result.exit_code == 0
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: vast left out of this selection: daily search quota")
    payload = json.loads(result.stdout)
    assert [r["offer_id"] for r in payload["ranked"]] == ["b-a4000"] and list(payload["left_out"]) == ["vast"]


def test_only_one_provider_configured(twins, monkeypatch):
    monkeypatch.delenv("BASILICA_API_TOKEN")
    result = gpus("offers", "--json")
    assert result.exit_code == 0 and {r["provider"] for r in json.loads(result.stdout)["ranked"]} == {"vast"}
    assert result.stderr.count("\n") == 1 and "no Basilica API token" in result.stderr
    monkeypatch.delenv("VAST_API_KEY")
    result = gpus("offers", "--provider", "vast")
    assert result.exit_code == 6
    assert result.stderr.splitlines() == [
        "warning: vast left out of this selection: no Vast API key: set VAST_API_KEY (or pass --vast-key); see "
        "docs/operator.md; no provider left",
        "error: no provider could be asked for offers (see the lines above)"]
    assert gpus("offers", "--provider", "azure").exit_code == 2


def test_list_rentals_stop_and_balance_on_vast(twins, tmp_path):
    _, vast = twins

    async def rent() -> int:
        async with VastClient(VAST_KEY, base_url=vast.base_url) as client:
            return await client.create_instance(201, image="example/actor:1", env={"-p 8000:8000": "1"},
                                                label="sn-v1-u3-abc", price=None, disk_gb=16)

    listed = json.loads(gpus("list", "--provider", "vast", "--json").stdout)["ranked"]
    assert [r["offer_id"] for r in listed] == ["202", "201"]  # cheapest per hour first
    instance_id = asyncio.run(rent())
    listed = json.loads(gpus("list", "--provider", "vast", "--json").stdout)["ranked"]
    assert [r["offer_id"] for r in listed] == ["202"]  # a rented box is no longer offered
    mine = json.loads(gpus("rentals", "--provider", "vast", "--json").stdout)
    assert [(i["id"], i["label"]) for i in mine] == [(instance_id, "sn-v1-u3-abc")]
    assert "extra_env" not in json.dumps(mine)
    with Ledger(tmp_path / "home" / "state.sqlite") as ledger:
        ledger.begin("instance", "sn-v1-u3-abc", gpu_type="RTX A4000")
        ledger.mark_active("sn-v1-u3-abc", str(instance_id))
    result = gpus("stop", str(instance_id), "--provider", "vast")
    assert result.exit_code == 0 and result.stdout.strip() == f"destroyed Vast instance {instance_id}"
    assert json.loads(gpus("rentals", "--provider", "vast", "--json").stdout) == []
    with Ledger(tmp_path / "home" / "state.sqlite") as ledger:
        assert ledger.get("sn-v1-u3-abc").state == "stopped"
    gone = gpus("stop", str(instance_id), "--provider", "vast")
    assert gone.exit_code == 5 and gone.stderr.startswith("error: vast:")
    assert gpus("stop", "abc", "--provider", "vast").exit_code == 2
    balances = json.loads(gpus("balance", "--provider", "all", "--json").stdout)
    assert balances == {"basilica": pytest.approx(25.0), "vast": pytest.approx(100.0)}
    assert gpus("balance", "--provider", "vast").stdout.strip() == "vast balance $100.00"


def test_basilica_stays_the_default_provider(twins):
    rows = json.loads(gpus("list", "--json").stdout)
    assert [r["id"] for r in rows] == ["b-a4000"]  # today's shape, unchanged
    assert Decimal(str(rows[0]["hourly_rate"])) == Decimal("0.25")


def test_rent_one_vast_box_by_hand_ledger_first_and_labelled(twins, tmp_path):
    _, vast = twins
    home = tmp_path / "home"
    result = gpus("rent", "--provider", "vast", "201", "--image", "example/actor:1", "--json")
    assert result.exit_code == 0, result.stderr
    rented = json.loads(result.stdout)
    identity = validator_identity(home)
    assert rented["label"].startswith(f"sn-{identity}-cli-") and rented["hourly_usd"] == pytest.approx(0.12)
    assert [(c.offer_id, c.price, c.label) for c in vast.created] == [(201, None, rented["label"])]
    assert set(vast.created[0].env_keys) == {"SUBNET_ACTOR_TOKEN", "-p 8000:8000"}  # guarded, port mapped
    assert VAST_KEY not in result.stdout + result.stderr
    with Ledger(home / "state.sqlite") as ledger:
        row = ledger.get(rented["label"])
    assert (row.owner, row.state, row.remote_id, row.hourly_rate) == ("cli", "active", str(rented["instance_id"]),
                                                                      Decimal("0.12"))
    assert row.created_at <= vast.instances[rented["instance_id"]].start_date  # the row came first
    bid = json.loads(gpus("rent", "--provider", "vast", "202", "--image", "example/actor:1", "--json").stdout)
    assert vast.created[-1].price == pytest.approx(0.09) and bid["bid"] == pytest.approx(0.09)  # at the cap or under
    # The validator's reclaim (our prefix too) leaves a box rented by hand to the operator ...
    runtime, _ = runtime_for(home, vast.base_url, key=VAST_KEY)
    assert asyncio.run(runtime.reclaim(close=True)) == [] and rented["instance_id"] in vast.instances
    # ... who stops it, closing its row.
    assert gpus("stop", "--provider", "vast", str(rented["instance_id"])).exit_code == 0
    with Ledger(home / "state.sqlite") as ledger:
        assert ledger.get(rented["label"]).state == "stopped"


def test_rent_refuses_a_vast_offer_above_the_cap_or_outside_the_allowlist_in_one_line(twins, tmp_path):
    _, vast = twins
    vast.book.append(vast_offer(204, "RTX 3090", "0.05"))  # cheapest of all, not in the allowlist
    for offer_id, words in (("203", "box price $0.60/h exceeds SUBNET_MAX_HOURLY_RATE $0.44/h"),
                            ("204", "not a rentable offer of the allowlist")):
        result = gpus("rent", "--provider", "vast", offer_id, "--image", "example/actor:1")
        assert result.exit_code == 7, result.stderr
        assert result.stderr.startswith(f"error: vast offer {offer_id} refused: ") and words in result.stderr
        assert result.stderr.count("\n") == 1
    no_image = gpus("rent", "--provider", "vast", "201")
    assert no_image.exit_code == 2 and "--image" in no_image.stderr and no_image.stderr.count("\n") == 1
    assert vast.created == []  # nothing rented ...
    state = tmp_path / "home" / "state.sqlite"
    assert not state.exists() or Ledger(state).entries("instance") == []  # ... and nothing to track
