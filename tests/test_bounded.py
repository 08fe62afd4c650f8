"""imgcheck.bounded: the one bounded thread pipeline (scan's decoders, colorize's decode/encode)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from imgcheck.bounded import Pending, merge_known, ordered_map, thread_pool


def test_ordered_map_keeps_input_order() -> None:
    def slow_first(i: int) -> int:
        time.sleep(0.02 if i == 0 else 0.0)
        return i * i

    with thread_pool(4, "t") as pool:
        assert list(ordered_map(pool, slow_first, range(20), window=5)) == [
            i * i for i in range(20)
        ]


def test_ordered_map_reads_its_input_lazily() -> None:
    """At most `window` items are taken ahead of the consumer: a million-path walk is never
    read up front (Executor.map would, on Python < 3.14)."""
    taken = 0

    def walk() -> Iterator[int]:
        nonlocal taken
        for i in range(10**6):
            taken += 1
            yield i

    with thread_pool(2, "t") as pool:
        results = ordered_map(pool, lambda i: i, walk(), window=3)
        assert next(results) == 0
        assert taken <= 4  # the window, plus the one just handed back
        results.close()


def test_pending_hands_back_in_order_and_bounds_the_queue() -> None:
    gate = threading.Event()
    with thread_pool(2, "t") as pool:
        pending: Pending[int] = Pending()
        pending.put(pool.submit(lambda: (gate.wait(5), 1)[1]))
        pending.put(pool.submit(lambda: 2))
        assert list(pending.take(keep=2)) == []  # the head is not done and the queue is short
        gate.set()
        assert list(pending.take(keep=0)) == [1, 2]
        assert len(pending) == 0


def test_thread_pool_cancels_queued_work_when_the_consumer_stops() -> None:
    ran: list[int] = []

    def work(i: int) -> int:
        time.sleep(0.01)
        ran.append(i)
        return i

    with thread_pool(1, "t") as pool:
        for future in [pool.submit(work, i) for i in range(50)]:
            del future
    assert len(ran) < 50  # queued work was dropped, running work finished


def test_merge_known_keeps_item_order_and_runs_only_the_unknown() -> None:
    """Known rows land in their place among the rows `run` makes, `run` sees only the other
    items, and each callback sees each of its rows once."""
    known = {1: "k1", 2: "k2", 5: "k5"}
    ran: list[int] = []
    seen: dict[str, list[str]] = {"known": [], "fresh": []}

    def run(items):
        for i in items:
            ran.append(i)
            yield f"r{i}"

    out = list(
        merge_known(
            range(7),
            known.get,
            run,
            on_known=seen["known"].append,
            on_fresh=seen["fresh"].append,
        )
    )
    assert out == ["r0", "k1", "k2", "r3", "r4", "k5", "r6"]
    assert ran == [0, 3, 4, 6]
    assert seen == {"known": ["k1", "k2", "k5"], "fresh": ["r0", "r3", "r4", "r6"]}
    assert list(merge_known(range(3), lambda i: f"k{i}", run)) == ["k0", "k1", "k2"]
