"""The breaker's states on a clock the test moves: closed -> open -> half-open -> closed/open."""

from __future__ import annotations

from edge.config import BreakerConfig
from edge.shield.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(failures: int = 3, open_for: float = 5.0, max_open_for: float = 20.0) -> tuple[Breaker, Clock, list]:
    clock, changes = Clock(), []
    b = Breaker(BreakerConfig(failures=failures, open_for=open_for, max_open_for=max_open_for),
                on_change=lambda a, z: changes.append((a, z)), clock=clock)
    return b, clock, changes


def test_opens_after_consecutive_failures_only() -> None:
    b, _, changes = make(failures=3)
    for _ in range(2):
        assert b.admit() is None
        b.failure()
    assert b.admit() is None
    b.success()  # an answer in between: the count starts again
    for _ in range(2):
        assert b.admit() is None
        b.failure()
    assert b.state == "closed" and changes == []
    assert b.admit() is None
    b.failure()
    assert b.state == "open" and changes == [("closed", "open")]
    wait = b.admit()
    assert wait is not None and 4.9 < wait <= 5.0
    assert b.blocked() == wait


def test_half_open_lets_one_probe_and_its_success_closes() -> None:
    b, clock, changes = make(failures=1)
    b.admit()
    b.failure()
    clock.now += 5.01
    assert b.blocked() is None  # the back-off is over: a call may go
    assert b.admit() is None  # the probe
    assert b.state == "half_open"
    assert b.admit() == 5.0  # everyone else still waits
    assert b.blocked() == 5.0
    b.success()
    assert b.state == "closed" and b.admit() is None
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_probe_doubles_the_back_off_up_to_the_cap() -> None:
    b, clock, _ = make(failures=1, open_for=5, max_open_for=12)
    b.admit()
    b.failure()
    waits = []
    for _ in range(3):
        clock.now += 100
        assert b.admit() is None  # probe
        b.failure()
        waits.append(round(b.blocked() or 0, 3))
    assert waits == [10.0, 12.0, 12.0]
    clock.now += 12.01
    assert b.admit() is None
    b.success()
    b.admit()
    b.failure()  # a new outage starts from open_for again
    assert round(b.blocked() or 0, 3) == 5.0


def test_a_probe_that_ends_without_an_answer_lets_another_go() -> None:
    b, clock, _ = make(failures=1)
    b.admit()
    b.failure()
    clock.now += 6
    assert b.admit() is None
    assert b.admit() is not None
    b.release()
    assert b.admit() is None


def test_release_while_closed_changes_nothing() -> None:
    b, _, changes = make()
    b.release()
    assert b.state == "closed" and b.admit() is None and changes == []
