"""`subnet gpus ...` end to end: CLI → client → real SDK → HTTP → twin; ledger in a temp state DB."""

from __future__ import annotations

import json

import pytest

from subnet.compute import Ledger

START = "/v2/secure-cloud/rentals/start"


def test_list_shows_exactly_the_allowed_offerings_cheapest_box_first(cli, env, allowed_order):
    rows = cli.json("list")
    assert [r["id"] for r in rows] == allowed_order
    assert rows[0] == {"id": "v100-sxm2-spot", "gpu_type": "TESLA V100-SXM2-16GB", "gpu_count": 1, "is_spot": True,
                       "hourly_rate": 0.06, "hourly_rate_per_gpu": 0.06, "provider": "cyan", "region": "us-east-1"}
    two = next(r for r in rows if r["id"] == "a4000-2x")
    assert (two["hourly_rate"], two["hourly_rate_per_gpu"], two["gpu_count"]) == (0.31, 0.155, 2)
    assert [r["hourly_rate"] for r in rows] == [0.06, 0.15, 0.16, 0.31, 0.44]


def test_list_all_explains_every_refusal(cli, env):
    rows = {r["id"]: r for r in cli.json("list", "--all")}
    assert "v100-gone" not in rows  # the API lists available offerings only
    assert rows["a4000-2x-pricey"]["reason"] == "box price $0.50/h (2 x $0.25) exceeds BASILICA_MAX_HOURLY_RATE $0.44/h"
    assert rows["a6000-od"]["reason"].startswith("RTX-A6000 ondemand x1 is not in BASILICA_ALLOWED_GPU_TYPES")
    assert rows["v100-4x"]["allowed"] is False and rows["v100-spot-4x"]["allowed"] is False
    assert [r["allowed"] for r in cli.json("list", "--all")][:5] == [True] * 5


def test_list_follows_the_configured_policy(cli, env, monkeypatch):
    monkeypatch.setenv("BASILICA_ALLOWED_GPU_TYPES", "v100:ondemand:4,H100:ondemand:1")
    monkeypatch.setenv("BASILICA_MAX_HOURLY_RATE", "0.5")
    assert [r["id"] for r in cli.json("list")] == ["v100-4x"]


def test_human_list_shows_box_prices_and_full_ids(cli, env, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = cli("list")
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if "│" in line]
    assert [line.split("│")[1].strip() for line in lines] == [
        "v100-sxm2-spot", "v100-od", "a4000-1x", "a4000-2x", "a6000-spot"]
    assert "$0.155" in lines[3] and "$0.31" in lines[3] and "cap $0.44/h" in result.stdout


@pytest.mark.parametrize("offering_id, code, message", [
    ("a6000-od", 7, "refusing to rent a6000-od: RTX-A6000 ondemand x1 is not in BASILICA_ALLOWED_GPU_TYPES"),
    ("a4000-2x-pricey", 7, "exceeds BASILICA_MAX_HOURLY_RATE $0.44/h"),
    ("h100", 7, "H100 ondemand x1 is not in"),
    ("no-such-offering", 5, "offering 'no-such-offering' is not listed as available"),
])
def test_rent_refuses_anything_outside_the_policy(cli, env, twin, ledger_path, offering_id, code, message):
    result = cli("rent", offering_id, "--json")
    assert result.exit_code == code
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert json.loads(result.stdout)["error"]["exit_code"] == code
    assert twin.requests("POST", START) == [] and twin.rentals == {}
    assert Ledger(ledger_path).entries() == []


def test_dry_run_rents_nothing(cli, env, twin, ledger_path):
    out = cli.json("rent", "a4000-2x", "--dry-run")
    assert out["dry_run"] is True and out["rental"] is None and out["ledger"] is None
    assert out["offering"]["id"] == "a4000-2x" and out["offering"]["hourly_rate"] == 0.31
    cheapest = cli.json("rent-cheapest", "--dry-run")
    assert cheapest["offering"]["id"] == "v100-sxm2-spot" and cheapest["rental"] is None
    assert [r["method"] for r in twin.requests()] == ["GET", "GET"]  # two price lists, nothing else
    assert not ledger_path.exists()  # a dry run does not even create the state DB
    human = cli("rent-cheapest", "--dry-run").stdout
    assert "would rent v100-sxm2-spot (TESLA V100-SXM2-16GB spot x1) at $0.06/h" in human


def test_rent_cheapest_rents_the_cheapest_and_tracks_it(cli, env, twin, ledger_path):
    out = cli.json("rent-cheapest")
    assert out["offering"]["id"] == "v100-sxm2-spot" and out["dry_run"] is False
    (rental,) = twin.rentals.values()
    assert rental["offering_id"] == "v100-sxm2-spot" and out["rental"]["rental_id"] == rental["rental_id"]
    assert out["ledger"]["state"] == "active" and out["ledger"]["remote_id"] == rental["rental_id"]
    assert out["ledger"]["hourly_rate"] == 0.06
    (entry,) = Ledger(ledger_path).entries()
    assert entry.name == rental["name"] == twin.requests("POST", START)[0]["body"]["name"]


def test_rent_a_specific_allowed_offering(cli, env, twin):
    out = cli.json("rent", "a6000-spot")
    assert out["rental"]["hourly_cost"] == 0.44 and out["rental"]["gpu_type"] == "RTX-A6000"


def test_nothing_affordable_exits_3_naming_the_cap(cli, env, twin, monkeypatch):
    monkeypatch.setenv("BASILICA_MAX_HOURLY_RATE", "0.05")
    result = cli("rent-cheapest", "--json")
    assert result.exit_code == 3
    assert "under BASILICA_MAX_HOURLY_RATE $0.05/h" in result.stderr
    message = result.stderr.removeprefix("error: ").strip()
    assert json.loads(result.stdout) == {"error": {"message": message, "exit_code": 3}}
    assert twin.requests("POST", START) == []


def test_wrong_token_is_a_clear_401_that_never_echoes_the_token(cli, env, monkeypatch):
    monkeypatch.setenv("BASILICA_API_TOKEN", "wr0ng-t0ken-xyz")
    result = cli("balance")
    assert result.exit_code == 4
    assert result.stderr == ("error: Basilica rejected the API token while trying to read the balance (401): "
                             "check BASILICA_API_TOKEN\n")
    assert "wr0ng-t0ken-xyz" not in result.stdout + result.stderr


def test_missing_token_is_one_line_naming_the_variable(cli, clean_env):
    result = cli("list", "--json")
    assert result.exit_code == 2
    assert result.stderr == "error: no Basilica API token: set BASILICA_API_TOKEN (or pass --api-key)\n"
    assert json.loads(result.stdout)["error"]["exit_code"] == 2


def test_api_key_option_beats_the_environment(cli, env, monkeypatch, token):
    monkeypatch.setenv("BASILICA_API_TOKEN", "stale")
    assert cli("balance").exit_code == 4
    assert cli.json("balance", "--api-key", token)["balance"] == 25.0


def test_legacy_basilica_api_key_still_works(cli, env, monkeypatch, token):
    monkeypatch.delenv("BASILICA_API_TOKEN")
    monkeypatch.setenv("BASILICA_API_KEY", token)
    assert cli.json("balance")["balance"] == 25.0


@pytest.mark.parametrize("var, value, message", [
    ("BASILICA_MAX_HOURLY_RATE", "cheap", "error: BASILICA_MAX_HOURLY_RATE: 'cheap' is not a number"),
    ("BASILICA_ALLOWED_GPU_TYPES", "V100-spot-1", "error: BASILICA_ALLOWED_GPU_TYPES: bad entry 'V100-spot-1'"),
    ("BASILICA_RETRIES", "many", "error: BASILICA_RETRIES:"),
])
def test_malformed_settings_are_one_line_errors(cli, env, twin, monkeypatch, var, value, message):
    monkeypatch.setenv(var, value)
    result = cli("rent-cheapest")
    assert result.exit_code == 2 and result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert twin.requests() == []


def test_429_and_5xx_are_retried_then_succeed(cli, env, twin, allowed_order):
    twin.fault("GET /v2/secure-cloud/gpu-prices", 429, times=2)
    twin.fault("GET /v2/secure-cloud/gpu-prices", 503, plain=True)
    assert [r["id"] for r in cli.json("list")] == allowed_order
    assert len(twin.requests("GET", "/v2/secure-cloud/gpu-prices")) == 4


def test_persistent_5xx_is_a_clear_error(cli, env, twin):
    twin.fault("GET /v2/secure-cloud/gpu-prices", 502, times=4, plain=True, message="bad gateway")
    result = cli("list", "--json")
    assert result.exit_code == 6
    assert result.stderr.startswith("error: Basilica failed to list GPU offerings (502)")
    assert result.stderr.rstrip().endswith("(gave up after 4 attempts)")
    assert json.loads(result.stdout)["error"]["exit_code"] == 6


def test_failed_start_is_ledgered_as_failed(cli, env, twin, ledger_path):
    twin.fault("POST " + START, 409, message="capacity gone")
    result = cli("rent", "v100-od")
    assert result.exit_code == 1 and "capacity gone" in result.stderr
    (entry,) = Ledger(ledger_path).entries()
    assert (entry.state, entry.offering_id, entry.remote_id) == ("failed", "v100-od", None)
    assert twin.rentals == {}


def test_rentals_flags_orphans_on_both_sides_and_costs(cli, env, twin, ledger_path):
    ours = cli.json("rent", "v100-od")["rental"]
    stranger = twin.add_rental("h100", name="made-in-console")
    with Ledger(ledger_path) as led:
        led.begin("rental", "ghost", offering_id="a4000-1x", hourly_rate=0.16)
        led.mark_active("ghost", "gone-remote-id")
    out = cli.json("rentals")
    assert [t["remote"]["rental_id"] for t in out["tracked"]] == [ours["rental_id"]]
    assert [(o["rental_id"], o["reason"]) for o in out["orphans"]["remote"]] == [
        (stranger["rental_id"], "not in the ledger")]
    assert [(o["name"], o["remote_id"]) for o in out["orphans"]["ledger"]] == [("ghost", "gone-remote-id")]
    assert out["totals"]["hourly_rate"] == pytest.approx(0.15 + 2.10)
    assert out["tracked"][0]["ledger"]["cost_so_far"] >= 0 and out["orphans"]["remote"][0]["cost_so_far"] >= 0
    human = cli("rentals").stdout
    assert "ORPHAN" in human and "subnet gpus stop" in human


def test_stop_and_status(cli, env, twin, ledger_path):
    rental_id = cli.json("rent-cheapest")["rental"]["rental_id"]
    status = cli.json("status", rental_id)
    assert status["rental"]["status"] == "running" and status["ledger"]["state"] == "active"
    stopped = cli.json("stop", rental_id)
    assert stopped["rental_id"] == rental_id and stopped["status"] == "stopped"
    assert set(stopped) == {"rental_id", "status", "duration_hours", "total_cost"}
    (entry,) = Ledger(ledger_path).entries()
    assert entry.state == "stopped" and entry.total_cost is not None
    assert cli.json("rentals")["tracked"] == []


def test_stopping_a_ledger_orphan_closes_its_row(cli, env, ledger_path):
    with Ledger(ledger_path) as led:
        led.begin("rental", "ghost")
        led.mark_active("ghost", "gone-remote-id")
    result = cli("stop", "gone-remote-id", "--json")
    assert result.exit_code == 5 and "Rental gone-remote-id not found (404)" in result.stderr
    assert Ledger(ledger_path).get("ghost").state == "stopped"
    assert cli.json("rentals")["orphans"]["ledger"] == []


def test_status_of_unknown_rental_is_exit_5(cli, env):
    result = cli("status", "nope")
    assert result.exit_code == 5 and result.stderr == "error: no rental 'nope' on this Basilica account\n"


@pytest.mark.parametrize("args", [["list"], ["list", "--all"], ["rent", "v100-od", "--dry-run"],
                                  ["rent-cheapest", "--dry-run"], ["rentals"], ["balance"]])
def test_every_read_command_prints_valid_json(cli, env, args):
    result = cli(*args, "--json")
    assert result.exit_code == 0 and result.stderr == ""
    json.loads(result.stdout)


def test_balance_json(cli, env):
    out = cli.json("balance")
    assert out["balance"] == 25.0 and out["last_updated"].endswith("Z")


def test_start_that_keeps_failing_is_marked_failed_and_retried_a_bounded_number_of_times(cli, env, twin, ledger_path):
    twin.fault("POST " + START, 503, times=4, plain=True)
    result = cli("rent", "a4000-1x", "--json")
    assert result.exit_code == 6 and "(gave up after 4 attempts)" in result.stderr
    assert len(twin.requests("POST", START)) == 4 and twin.rentals == {}
    # between attempts the client looked for a rental under its own name before retrying
    assert len(twin.requests("GET", "/v2/secure-cloud/rentals")) == 4
    (entry,) = Ledger(ledger_path).entries()
    assert entry.state == "failed" and "503" in entry.error
