"""moto's DynamoDB, as the tests and the local stack run it, writes atomically as DynamoDB does:
without that, two workers' conditional updates of one Clay URL's count both pass now and then
(21 trials in 40 here) and the local stack sends rows past the URL's limit."""

from __future__ import annotations

import threading

from clay_relay.store import RelayTable


def test_concurrent_reservations_never_take_more_than_the_quota(aws):
    table = RelayTable()
    for trial in range(30):
        granted: list[int] = []
        start = threading.Barrier(4)

        def reserve(webhook: str, start: threading.Barrier, granted: list[int]) -> None:
            start.wait(timeout=30)
            granted.append(table.reserve_submissions(webhook, 3, 5, "leads").granted)

        threads = [threading.Thread(target=reserve, args=(f"webhook-{trial}", start, granted)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sum(granted) == 5, f"trial {trial}: {granted}"
