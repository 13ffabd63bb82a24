"""Restart policies: when a supervised child is restarted, how soon, and when not.

A :class:`RestartPolicy` is a pure value. The arithmetic lives in its
methods (:meth:`RestartPolicy.delay`, :meth:`RestartPolicy.decay`,
:meth:`RestartPolicy.restarts_after`) so it can be tested without a
supervisor; the supervisor only applies it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, Final, Literal, cast, final

import attrs

__all__ = [
    "DoNotRestart",
    "RestartKind",
    "RestartPolicy",
    "Strategy",
    "TerminateTree",
    "check_policy",
]

RestartKind = Literal["permanent", "transient", "temporary"]
"""``permanent``: always restarted; ``transient``: restarted only after a
failure; ``temporary``: never restarted (OTP's names)."""

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
"""Which children a failure restarts: the failed one, all of them, or the
failed one and those after it in the supervisor's order (OTP's names)."""

OnThreshold = Literal["backoff", "give_up"]

_KINDS: Final = ("permanent", "transient", "temporary")
_STRATEGIES: Final = ("one_for_one", "one_for_all", "rest_for_one")
_ON_THRESHOLD: Final = ("backoff", "give_up")


class DoNotRestart(Exception):
    """Raise it from a supervised child to end it for good.

    The supervisor does not restart the child, whatever the restart kind,
    and does not count it as a failure. The key stays stopped until
    ``start_child(key)`` or until it leaves the table and comes back.
    """


class TerminateTree(Exception):
    """Raise it from a supervised child to end its whole supervisor.

    The supervisor stops every child and fails upward with this exception
    (suture's ``ErrTerminateSupervisorTree``), so its parent sees it as the
    supervisor's failure.
    """


def _one_of(allowed: tuple[str, ...]) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            raise ValueError(
                f"RestartPolicy: {attribute.name} must be one of "
                f"{', '.join(map(repr, allowed))}, got {value!r}"
            )

    return check


def _number(*, minimum: float, above: bool = False, finite: bool = False) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(
                f"RestartPolicy: {attribute.name} must be a number, got {value!r}"
            )
        bad = math.isnan(value) or value < minimum or (above and value == minimum)
        if bad or (finite and math.isinf(value)):
            word = ">" if above else ">="
            raise ValueError(
                f"RestartPolicy: {attribute.name} must be {word} {minimum:g}"
                f"{' and finite' if finite else ''}, got {value!r}"
            )

    return check


def _jitter(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _number(minimum=0)(instance, attribute, value)
    assert isinstance(value, int | float)
    if value >= 1:
        raise ValueError(
            f"RestartPolicy: jitter is a fraction of the delay, 0 <= jitter < 1, "
            f"got {value!r}"
        )


def _seed(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"RestartPolicy: seed must be an int or None, got {value!r}")


def _to_order(value: Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(k, str) for k in value):
        raise TypeError(
            f"RestartPolicy: order must be a sequence of keys (str), got {value!r}"
        )
    return tuple(value)


@final
@attrs.frozen(kw_only=True)
class RestartPolicy:
    """How a :class:`~proctree.Supervisor` restarts its children.

    A frozen value; build one with a named constructor
    (:meth:`exponential`, :meth:`immediate`, :meth:`transient`,
    :meth:`temporary`) or with keywords, and derive variants with
    ``attrs.evolve``.

    **Backoff.** The n-th restart in a row of a key (n from 0) waits
    ``min(max_delay, initial_delay * multiplier ** n)``, scaled by a random
    factor in ``[1 - jitter, 1 + jitter]`` and capped at ``max_delay``.
    A child that ran ``stable_after`` seconds before ending starts the
    sequence over.

    **Failure count.** Every end that leads to a restart adds to one count
    per supervisor, which decays with half-life ``failure_decay``: at each
    end, ``failures = failures * 0.5 ** (dt / failure_decay) + 1`` (suture).
    Once it exceeds ``failure_threshold``, ``on_threshold`` decides:
    ``"backoff"`` pauses every restart for ``threshold_backoff`` seconds
    (then the count starts again from 0), ``"give_up"`` stops every child
    and fails the supervisor upward.

    Attributes:
        kind: ``"permanent"`` (default), ``"transient"`` or ``"temporary"``.
        strategy: ``"one_for_one"`` (default), ``"one_for_all"`` or
            ``"rest_for_one"``.
        order: the keys in the order ``rest_for_one`` and ``one_for_all``
            use (keys not listed come after, in table order); None means
            the table's order.
        initial_delay: seconds before the first restart of a key.
        multiplier: growth of the delay per restart in a row (>= 1).
        max_delay: the cap of the delay, in seconds.
        jitter: the random fraction added or taken off each delay (< 1).
        seed: seeds the supervisor's random source, for reproducible jitter.
        failure_threshold: the decayed failure count past which
            ``on_threshold`` applies.
        failure_decay: the half-life of the failure count, in seconds.
        on_threshold: ``"backoff"`` (default) or ``"give_up"``.
        threshold_backoff: seconds restarts pause once past the threshold.
        stable_after: seconds of running that reset a key's backoff.
    """

    kind: RestartKind = attrs.field(default="permanent", validator=_one_of(_KINDS))
    strategy: Strategy = attrs.field(
        default="one_for_one", validator=_one_of(_STRATEGIES)
    )
    order: tuple[str, ...] | None = attrs.field(default=None, converter=_to_order)
    initial_delay: float = attrs.field(default=0.1, validator=_number(minimum=0))
    multiplier: float = attrs.field(
        default=2.0, validator=_number(minimum=1, finite=True)
    )
    max_delay: float = attrs.field(default=30.0, validator=_number(minimum=0))
    jitter: float = attrs.field(default=0.1, validator=_jitter)
    seed: int | None = attrs.field(default=None, validator=_seed)
    failure_threshold: float = attrs.field(
        default=5.0, validator=_number(minimum=0, above=True)
    )
    failure_decay: float = attrs.field(
        default=30.0, validator=_number(minimum=0, above=True)
    )
    on_threshold: OnThreshold = attrs.field(
        default="backoff", validator=_one_of(_ON_THRESHOLD)
    )
    threshold_backoff: float = attrs.field(
        default=15.0, validator=_number(minimum=0, finite=True)
    )
    stable_after: float = attrs.field(default=60.0, validator=_number(minimum=0))

    # ------------------------------------------------------ named constructors

    @classmethod
    def exponential(
        cls,
        *,
        initial: float = 0.1,
        cap: float = 30.0,
        multiplier: float = 2.0,
        jitter: float = 0.1,
        seed: int | None = None,
        **options: Any,
    ) -> RestartPolicy:
        """Permanent children, exponential backoff with jitter (the default).

        Args:
            initial: seconds before the first restart.
            cap: the longest delay, in seconds.
            multiplier: growth of the delay per restart in a row.
            jitter: the random fraction of each delay (0 for exact delays).
            seed: seeds the random source of the jitter.
            **options: any other field of :class:`RestartPolicy`.

        Raises:
            TypeError: a field has the wrong type or is unknown.
            ValueError: a field is out of range.
        """
        return cls(
            initial_delay=initial,
            max_delay=cap,
            multiplier=multiplier,
            jitter=jitter,
            seed=seed,
            **options,
        )

    @classmethod
    def immediate(cls, **options: Any) -> RestartPolicy:
        """Restart at once, with no delay and no jitter (triotp's behaviour).

        The failure threshold still applies, so a child that fails at once
        every time cannot spin the supervisor.

        Args:
            **options: any other field of :class:`RestartPolicy`.
        """
        fields: dict[str, Any] = {"initial_delay": 0.0, "jitter": 0.0, **options}
        return cls(**fields)

    @classmethod
    def transient(cls, **options: Any) -> RestartPolicy:
        """Restart a child only when it failed, not when it returned.

        Args:
            **options: any other field of :class:`RestartPolicy`.
        """
        return cls(kind="transient", **options)

    @classmethod
    def temporary(cls, **options: Any) -> RestartPolicy:
        """Never restart a child: the supervisor only starts and stops it.

        Args:
            **options: any other field of :class:`RestartPolicy`.
        """
        return cls(kind="temporary", **options)

    # ----------------------------------------------------------- arithmetic

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before restart number ``attempt`` (0-based) in a row.

        Args:
            attempt: how many restarts in a row came before this one.
            rng: the random source of the jitter; needed when ``jitter`` > 0.

        Raises:
            ValueError: ``attempt`` is negative, or ``jitter`` > 0 and no
                ``rng`` was given.
        """
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt!r}")
        base = self.initial_delay
        for _ in range(attempt):
            # Stop multiplying at the cap: no overflow for long streaks.
            if base >= self.max_delay or base == 0 or self.multiplier == 1:
                break
            base *= self.multiplier
        base = min(base, self.max_delay)
        if self.jitter and base:
            if rng is None:
                raise ValueError("a policy with jitter needs a random source (rng=)")
            base *= 1 + self.jitter * (2 * rng.random() - 1)
        return min(base, self.max_delay)

    def decay(self, failures: float, elapsed: float) -> float:
        """The failure count after one more failure, ``elapsed`` seconds later.

        ``failures * 0.5 ** (elapsed / failure_decay) + 1``: with a decay of
        30 s, 2 failures decay to 1 in 30 s, and the new one makes 2.
        """
        kept: float = failures * 0.5 ** (max(0.0, elapsed) / self.failure_decay)
        return kept + 1

    def restarts_after(self, error: BaseException | None) -> bool:
        """Whether a child that ended with ``error`` (None: returned) restarts.

        :class:`DoNotRestart` never restarts; otherwise the kind decides.
        """
        if error is not None and matches(error, DoNotRestart):
            return False
        if self.kind == "permanent":
            return True
        return self.kind == "transient" and error is not None


def check_policy(policy: object, what: str) -> RestartPolicy:
    """``policy`` as a :class:`RestartPolicy` (None: the exponential default)."""
    if policy is None:
        return RestartPolicy.exponential()
    if not isinstance(policy, RestartPolicy):
        raise TypeError(
            f"{what}: policy must be a proctree.RestartPolicy, got {policy!r}"
        )
    return policy


def matches(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``error`` is ``kind`` or a group holding one."""
    if isinstance(error, kind):
        return True
    if not isinstance(error, BaseExceptionGroup):
        return False
    group = cast("BaseExceptionGroup[BaseException]", error)
    return group.subgroup(kind) is not None
