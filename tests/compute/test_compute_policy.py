"""The GPU policy, pure: allowlist format, matching, box-price cap and ordering."""

from __future__ import annotations

from decimal import Decimal

import pytest

from subnet.compute.policy import (
    AllowedGpu,
    GpuPolicy,
    Offering,
    PolicyFormatError,
    money,
    parse_allowlist,
    parse_max_rate,
)


def off(id, gpu, rate, count=1, spot=False):
    return Offering(id, gpu, count, spot, Decimal(rate), "cyan", "us")


def test_default_policy_is_the_documented_one():
    policy = GpuPolicy.default()
    assert policy.describe_allowlist() == (
        "V100:spot:1,V100:ondemand:1,RTX-A4000:ondemand:1,RTX-A4000:ondemand:2,RTX-A6000:spot:1"
    )
    assert policy.max_hourly_rate == Decimal("0.44")


def test_allowlist_format_parses_markets_counts_and_spaces():
    assert parse_allowlist(" V100:spot:1 , rtx-a4000:ON-DEMAND:2,A10G:ondemand:8 ") == (
        AllowedGpu("V100", True, 1), AllowedGpu("rtx-a4000", False, 2), AllowedGpu("A10G", False, 8),
    )


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "is empty"),
        ("V100:spot", "bad entry 'V100:spot'"),
        ("V100:spotty:1", "bad market 'spotty'"),
        ("V100:spot:0", "bad GPU count '0'"),
        ("V100:spot:two", "bad GPU count 'two'"),
        ("V1;00:spot:1", "bad GPU name 'V1;00'"),
        ("V100:spot:1:extra", "bad entry"),
    ],
)
def test_malformed_allowlist_is_one_line_naming_the_variable(text, fragment):
    with pytest.raises(PolicyFormatError) as err:
        parse_allowlist(text)
    message = str(err.value)
    assert message.startswith("BASILICA_ALLOWED_GPU_TYPES")
    assert fragment in message and "\n" not in message


@pytest.mark.parametrize("text", ["abc", "0", "-1", "nan", "inf", ""])
def test_bad_cap_rejected(text):
    with pytest.raises(PolicyFormatError, match="^BASILICA_MAX_HOURLY_RATE"):
        parse_max_rate(text)


def test_gpu_type_is_a_case_insensitive_substring_but_spot_and_count_are_exact():
    policy = GpuPolicy.default()
    assert policy.refusal(off("a", "TESLA V100-SXM2-16GB", "0.06", spot=True)) is None
    assert policy.refusal(off("b", "tesla v100", "0.15")) is None
    assert "not in BASILICA_ALLOWED_GPU_TYPES" in policy.refusal(off("c", "RTX-A6000", "0.40"))  # on-demand
    assert "not in BASILICA_ALLOWED_GPU_TYPES" in policy.refusal(off("d", "TESLA V100", "0.05", count=2))
    assert "not in BASILICA_ALLOWED_GPU_TYPES" in policy.refusal(off("e", "RTX-A4000", "0.05", count=3))


def test_cap_applies_to_the_box_not_the_gpu():
    policy = GpuPolicy.default()
    pricey = off("p", "RTX-A4000", "0.25", count=2)  # 0.25 per GPU is under 0.44; the box is 0.50
    assert pricey.box_hourly_rate == Decimal("0.50")
    assert policy.refusal(pricey) == (
        "box price $0.50/h (2 x $0.25) exceeds BASILICA_MAX_HOURLY_RATE $0.44/h"
    )
    assert policy.refusal(off("edge", "RTX-A6000", "0.44", spot=True)) is None  # exactly the cap
    assert policy.refusal(off("odd", "RTX-A4000", "0.221", count=2)) is not None  # 0.442, no float slack


def test_sorted_by_box_price_not_per_gpu_price():
    policy = GpuPolicy.default()
    one = off("one", "RTX-A4000", "0.16")
    two = off("two", "RTX-A4000", "0.155", count=2)  # cheaper per GPU, dearer per box
    v100 = off("v100", "TESLA V100", "0.15")
    assert [o.id for o in policy.allowed_offerings([two, one, v100])] == ["v100", "one", "two"]
    assert policy.cheapest([two, one, v100]).id == "v100"
    assert policy.cheapest([off("h", "H100", "2.0")]) is None


def test_ties_break_deterministically():
    policy = GpuPolicy.default()
    a, b = off("b-id", "TESLA V100", "0.15"), off("a-id", "TESLA V100", "0.15")
    assert [o.id for o in policy.allowed_offerings([a, b])] == ["a-id", "b-id"]


def test_custom_policy_from_strings():
    policy = GpuPolicy.from_strings("V100:ondemand:4", "0.5")
    assert [o.id for o in policy.allowed_offerings([off("4x", "TESLA V100", "0.10", count=4),
                                                     off("1x", "TESLA V100", "0.10")])] == ["4x"]


def test_offering_json_separates_box_and_gpu_price():
    assert off("two", "RTX-A4000", "0.155", count=2).to_json() == {
        "id": "two", "gpu_type": "RTX-A4000", "gpu_count": 2, "is_spot": False,
        "hourly_rate": 0.31, "hourly_rate_per_gpu": 0.155, "provider": "cyan", "region": "us",
    }


def test_money_formatting():
    assert [money(Decimal("0.3")), money(Decimal("0.147")), money(0.05), money(Decimal("2"))] == [
        "$0.30", "$0.147", "$0.05", "$2.00"]
