"""Each destination's requests are spaced so that all worker instances together stay within its rate."""

from __future__ import annotations

import pytest

from clay_relay.pacing import MARGIN, CircuitBreaker, Pacer, interval_seconds


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


@pytest.mark.parametrize(
    ("rate", "workers"),
    [(10, 1), (10, 2), (10, 3), (10, 4), (10, 6), (10, 7), (10, 10), (20, 3), (20, 6), (7.5, 2), (7.5, 3)],
)
def test_instances_together_stay_within_the_rate_in_every_second_however_their_clocks_line_up(rate, workers):
    sent: list[float] = []
    for instance in range(workers):
        time_ = FakeTime()
        time_.now += instance * 0.0137  # each instance starts at its own moment
        send(Pacer(time_.clock, time_.sleep), time_, 40, rate=rate, workers=workers)
        sent += time_.sent
    assert busiest_second(sorted(sent)) <= rate


def test_an_uneven_share_is_rounded_down_to_whole_requests_per_second():
    assert interval_seconds(10, 3) == pytest.approx(1 / (3 * MARGIN)), "3/s each, not 3.33/s whose bursts add to 12"
    assert interval_seconds(10, 2) == pytest.approx(1 / (5 * MARGIN))


def test_a_share_below_one_request_per_second_is_kept_on_average():
    assert interval_seconds(1, 2) == pytest.approx(2 / MARGIN)
    sent: list[float] = []
    for instance in range(2):
        time_ = FakeTime()
        time_.now += instance * 0.3
        send(Pacer(time_.clock, time_.sleep), time_, 30, rate=1, workers=2)
        sent += time_.sent
    span = max(sent) - min(sent)
    assert len(sent) / span <= 1.0, "1/s over two instances: at most 1/s over time (a second may see both)"


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


# --- circuit breaker -----------------------------------------------------------------------------
def test_a_tripped_destination_is_left_alone_for_its_cool_down_with_the_reason(time_):
    breaker = CircuitBreaker(time_.clock)
    breaker.trip("loops", 15, "HTTP 503")

    assert breaker.why_open("loops") == "HTTP 503"
    assert breaker.why_open("clay") is None, "other destinations are not affected"
    time_.now += 14.9
    assert breaker.why_open("loops") == "HTTP 503"
    time_.now += 0.2
    assert breaker.why_open("loops") is None, "after the cool-down one request may probe it"


def test_a_success_closes_the_breaker_at_once(time_):
    breaker = CircuitBreaker(time_.clock)
    breaker.trip("slack", 60, "timed out")
    breaker.close("slack")
    assert breaker.why_open("slack") is None


def test_a_cool_down_of_zero_never_opens_the_breaker(time_):
    breaker = CircuitBreaker(time_.clock)
    breaker.trip("clay", 0, "HTTP 502")
    assert breaker.why_open("clay") is None
