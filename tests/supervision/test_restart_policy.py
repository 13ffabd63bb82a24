"""RestartPolicy: the arithmetic, the kinds, the named constructors, bad input."""

from __future__ import annotations

import random

import attrs
import pytest

from proctree._supervision.policy import DoNotRestart, RestartPolicy


def test_decay_follows_sutures_example() -> None:
    policy = RestartPolicy(failure_decay=30)
    # 2 failures decay to 1 in one half-life; the new failure makes 2.
    assert policy.decay(2.0, 30.0) == 2.0
    assert policy.decay(0.0, 0.0) == 1.0
    assert policy.decay(4.0, 60.0) == 2.0


def test_delays_double_up_to_the_cap_without_jitter() -> None:
    policy = RestartPolicy.exponential(initial=0.5, cap=4.0, jitter=0.0)
    assert [policy.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.delay(10_000) == 4.0


def test_jitter_stays_within_its_fraction_and_the_cap() -> None:
    policy = RestartPolicy.exponential(initial=1.0, cap=3.0, jitter=0.5, seed=1)
    rng = random.Random(1)
    for n in range(200):
        base = min(3.0, 2.0 ** (n % 4))
        assert 0.5 * base <= policy.delay(n % 4, rng) <= min(1.5 * base, 3.0)


def test_the_same_seed_gives_the_same_delays() -> None:
    policy = RestartPolicy.exponential(jitter=0.2, seed=3)
    one, two = random.Random(3), random.Random(3)
    assert [policy.delay(n, one) for n in range(8)] == [
        policy.delay(n, two) for n in range(8)
    ]


def test_jitter_without_a_random_source_is_an_error() -> None:
    with pytest.raises(ValueError, match="rng="):
        RestartPolicy(jitter=0.1).delay(0)


def test_immediate_has_no_delay() -> None:
    policy = RestartPolicy.immediate()
    assert [policy.delay(n) for n in range(3)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("policy", "after_failure", "after_return"),
    [
        (RestartPolicy(), True, True),
        (RestartPolicy.transient(), True, False),
        (RestartPolicy.temporary(), False, False),
    ],
)
def test_each_kind_decides_restarts(
    policy: RestartPolicy, after_failure: bool, after_return: bool
) -> None:
    assert policy.restarts_after(ValueError()) is after_failure
    assert policy.restarts_after(None) is after_return
    assert policy.restarts_after(DoNotRestart()) is False
    assert policy.restarts_after(ExceptionGroup("g", [DoNotRestart()])) is False


def test_policies_are_frozen_values() -> None:
    policy = RestartPolicy.exponential(seed=1, order=["b", "a"])
    assert policy.order == ("b", "a")
    assert policy == RestartPolicy.exponential(seed=1, order=("b", "a"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.kind = "temporary"  # type: ignore[misc]
    assert attrs.evolve(policy, strategy="one_for_all").strategy == "one_for_all"


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"kind": "sometimes"}, ValueError, "kind must be one of"),
        ({"strategy": "all"}, ValueError, "strategy must be one of"),
        ({"on_threshold": "panic"}, ValueError, "on_threshold"),
        ({"initial_delay": -1}, ValueError, "initial_delay must be >= 0"),
        ({"multiplier": 0.5}, ValueError, "multiplier must be >= 1"),
        ({"jitter": 1.0}, ValueError, "0 <= jitter < 1"),
        ({"failure_threshold": 0}, ValueError, "failure_threshold must be > 0"),
        ({"failure_decay": "30"}, TypeError, "failure_decay must be a number"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
        ({"order": "abc"}, TypeError, "sequence of keys"),
    ],
)
def test_bad_fields_say_what_is_expected(
    options: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        RestartPolicy(**options)  # type: ignore[arg-type]
