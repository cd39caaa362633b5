from subnet.validator.scoring import MinerMetrics, scores, smooth, weights


def metrics(uid, tasks, verified, latencies, price=None, copy=False):
    return MinerMetrics(uid, f"hk{uid}", f"d{uid}", tasks, verified, tuple(latencies), price, copy)


def test_score_is_accuracy_times_relative_cost():
    result = scores(
        [metrics(1, 10, 10, [100, 100, 100]), metrics(2, 10, 9, [200, 200]), metrics(3, 10, 5, [10])],
        accuracy_floor=0.8,
    )
    assert result[1] == 1.0
    assert abs(result[2] - 0.9 * 0.5) < 1e-12
    assert result[3] == 0.0  # below the floor, however fast


def test_price_enters_cost_and_missing_price_is_one():
    result = scores([metrics(1, 4, 4, [100], price=0.05), metrics(2, 4, 4, [20], price=0.44), metrics(3, 4, 4, [6])], 0.5)
    # cost: 5.0, 8.8, 6.0 → the cheap slow V100 wins
    assert result[1] == 1.0
    assert abs(result[2] - 5.0 / 8.8) < 1e-12
    assert abs(result[3] - 5.0 / 6.0) < 1e-12


def test_copies_and_empty_miners_earn_nothing():
    result = scores([metrics(1, 4, 4, [10], copy=True), metrics(2, 0, 0, []), metrics(3, 4, 4, [50])], 0.5)
    assert result == {1: 0.0, 2: 0.0, 3: 1.0}


def test_smooth_is_an_ema_and_keeps_unseen_hotkeys():
    out = smooth({"a": 1.0, "b": 0.5}, {"a": 0.0, "c": 0.8}, alpha=0.25)
    assert out == {"a": 0.75, "b": 0.5, "c": 0.8}


def test_weights_normalise_power_and_burn():
    assert weights({1: 1.0, 2: 1.0, 3: 0.0}) == {1: 0.5, 2: 0.5}
    sharp = weights({1: 1.0, 2: 0.5}, power=2)
    assert abs(sharp[1] - 0.8) < 1e-12 and abs(sharp[2] - 0.2) < 1e-12
    burned = weights({1: 1.0, 2: 1.0}, burn_share=0.5, burn_uid=0)
    assert burned == {1: 0.25, 2: 0.25, 0: 0.5}
    assert weights({1: 0.0}) == {}
    assert weights({1: 0.0}, burn_share=0.1, burn_uid=7) == {7: 1.0}
