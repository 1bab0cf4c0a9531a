"""Each destination's requests are spaced so that all worker instances together stay within its rate."""

from __future__ import annotations

import pytest

from clay_relay.pacing import MARGIN, Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sent: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


def send(pacer: Pacer, time_: FakeTime, n: int, *, rate: float = 10, workers: int = 1, dest: str = "loops") -> None:
    for _ in range(n):
        pacer.wait(dest, rate, workers)
        time_.sent.append(time_.now)


def busiest_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


def test_one_instance_sends_at_most_the_rate_in_any_second(time_):
    pacer = Pacer(time_.clock, time_.sleep)
    send(pacer, time_, 50, rate=10)

    gaps = [b - a for a, b in zip(time_.sent, time_.sent[1:], strict=False)]
    assert min(gaps) == pytest.approx(1 / (10 * MARGIN))
    assert busiest_second(time_.sent) <= 10


def test_each_of_several_instances_takes_an_equal_share(time_):
    pacer = Pacer(time_.clock, time_.sleep)
    send(pacer, time_, 20, rate=10, workers=2)

    assert busiest_second(time_.sent) <= 5, "two instances at 5/s each stay within 10/s together"


def test_destinations_are_paced_independently(time_):
    pacer = Pacer(time_.clock, time_.sleep)
    send(pacer, time_, 5, rate=1, dest="slack")
    start = time_.now
    pacer.wait("loops", 10, 1)

    assert time_.now == start, "a slow Slack does not hold back Loops"


def test_a_caller_that_wakes_late_does_not_bunch_with_the_next(time_):
    pacer = Pacer(time_.clock, time_.sleep)
    pacer.wait("loops", 10, 1)
    time_.now += 0.5  # this caller was descheduled long after its slot
    pacer.wait("loops", 10, 1)
    taken = time_.now
    pacer.wait("loops", 10, 1)

    assert time_.now - taken == pytest.approx(1 / (10 * MARGIN))


def test_a_destination_that_asks_to_slow_down_gets_nothing_until_then(time_):
    pacer = Pacer(time_.clock, time_.sleep)
    pacer.pause("loops", 3.0)

    assert pacer.delay("loops") == pytest.approx(3.0)
    start = time_.now
    pacer.wait("loops", 10, 1)
    assert time_.now - start == pytest.approx(3.0)
