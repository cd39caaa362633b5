"""A create whose answer never came, settled safely on both server generations. Pure."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from subnet.compute.recovery import LIST_GRACE_S, Step, close_after_404, names_listed, settle_unanswered


@dataclass
class Listed:
    id: str
    friendly_name: str = ""
    state: str = "Active"


OURS = "sn-abc-u1-cccc-000001"


def test_found_by_name_is_adopted_whatever_its_age():
    listing = [Listed("u-9", "other"), Listed("u-1", OURS)]
    decision = settle_unanswered(OURS, listing, known_ids=set(), age_s=0)
    assert (decision.step, decision.remote_id) == (Step.ADOPT, "u-1")


def test_a_listing_with_names_proves_absence_only_after_its_lag_and_never_re_posts():
    listing = [Listed("u-9", "someone-else")]
    assert settle_unanswered(OURS, listing, set(), age_s=5).step is Step.WAIT
    assert settle_unanswered(OURS, listing, set(), age_s=LIST_GRACE_S + 1).step is Step.CLOSE


def test_a_nameless_listing_never_closes_a_row_while_a_deployment_nobody_knows_is_listed():
    """The public server names nothing: "not listed by name" proves nothing there."""
    listing = [Listed("u-7"), Listed("u-8")]
    for age in (0, LIST_GRACE_S + 1, 10 * LIST_GRACE_S):
        assert settle_unanswered(OURS, listing, known_ids={"u-7"}, age_s=age).step is Step.REPOST


def test_a_nameless_listing_of_only_known_deployments_proves_ours_absent_after_the_lag():
    listing = [Listed("u-7"), Listed("u-8", state="Terminating")]  # one ours, one on its way out
    assert settle_unanswered(OURS, listing, {"u-7"}, age_s=1).step is Step.WAIT
    assert settle_unanswered(OURS, listing, {"u-7"}, age_s=LIST_GRACE_S + 1).step is Step.CLOSE
    assert settle_unanswered(OURS, [], set(), age_s=LIST_GRACE_S + 1).step is Step.CLOSE


@pytest.mark.parametrize("listing, expected", [([], None), ([Listed("a")], False), ([Listed("a"), Listed("b", "n")], True)])
def test_whether_a_listing_names_deployments(listing, expected):
    assert names_listed(listing) is expected


def test_a_404_closes_only_when_the_uuid_is_not_listed():
    assert close_after_404("u-1", OURS, [Listed("u-2")]) is True
    assert close_after_404("u-1", OURS, [Listed("u-1")]) is False  # nameless listing: the UUID is enough
    assert close_after_404("u-1", OURS, [Listed("u-5", OURS)]) is False
