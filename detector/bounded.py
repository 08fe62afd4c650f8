"""The one bounded thread pipeline of the runtime: scan's decoders and colorize's decode/encode.

Both commands stream millions of files through a few threads with flat memory, so both need the
same three things, kept here once:

- `thread_pool(workers, name)`: a pool that, however the block ends (done, an error, Ctrl-C,
  a consumer closing the generator), cancels queued work and waits for running work, so no
  thread writes after the command has returned.
- `ordered_map(pool, fn, items, window)`: `fn(item)` in the pool, results in input order, at
  most `window` items taken from `items` and not yet handed back. `items` is read lazily, one
  item per result handed back (img2dataset's semaphore pattern), never up front:
  `Executor.map` would consume a million-path walk before the first result on Python < 3.14.
- `merge_known(items, known, run)`: rows that are already known (a journal's, a cache's) in
  their place among the rows `run` makes for the other items, in input order.
- `Pending`: futures submitted on the side (colorize's encodes), handed back in submission
  order as they finish, with `take(keep)` blocking only while more than `keep` are pending.

What runs in the main thread between results (scan's batched detector, colorize's batcher and
model) stays with the caller: this module only bounds and orders the threaded part.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@contextlib.contextmanager
def thread_pool(workers: int, name: str) -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=name)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def ordered_map(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], window: int
) -> Iterator[R]:
    """Yield `fn(item)` for each item, in order, with at most `window` items in flight."""
    source = iter(items)
    inflight: deque[Future[R]] = deque()
    exhausted = False
    while True:
        while not exhausted and len(inflight) < max(1, window):
            item = next(source, _END)
            if item is _END:
                exhausted = True
            else:
                inflight.append(pool.submit(fn, item))  # type: ignore[arg-type]
        if not inflight:
            return
        yield inflight.popleft().result()


_END = object()


def merge_known(
    items: Iterable[T],
    known: Callable[[T], R | None],
    run: Callable[[Iterable[T]], Iterable[R]],
    *,
    on_known: Callable[[R], None] | None = None,
    on_fresh: Callable[[R], None] | None = None,
) -> Iterator[R]:
    """A row per item, in item order: `known(item)` where it has one, else the one `run`
    makes (`run` gets only those items, lazily, and must yield in its input order).

    What the scan's resume journal (saved rows) and its cache (rows by content) both wrap
    around an engine's `run`; `on_known` / `on_fresh` see each row as it is handed back."""
    marks: deque[R | None] = deque()

    def fresh() -> Iterator[T]:
        for item in items:
            row = known(item)
            marks.append(row)
            if row is None:
                yield item

    for result in run(fresh()):
        while marks and marks[0] is not None:
            row = marks.popleft()
            if on_known is not None:
                on_known(row)  # type: ignore[arg-type]
            yield row  # type: ignore[misc]
        marks.popleft()
        if on_fresh is not None:
            on_fresh(result)
        yield result
    while marks:
        row = marks.popleft()
        if row is not None:
            if on_known is not None:
                on_known(row)
            yield row


class Pending(Generic[R]):
    """Side work (futures) handed back in submission order."""

    def __init__(self) -> None:
        self._futures: deque[Future[R]] = deque()

    def __len__(self) -> int:
        return len(self._futures)

    def put(self, future: Future[R]) -> None:
        self._futures.append(future)

    def take(self, keep: int) -> Iterator[R]:
        """The finished head of the queue, waiting only while more than `keep` are pending."""
        while self._futures and (len(self._futures) > keep or self._futures[0].done()):
            yield self._futures.popleft().result()


__all__ = ["Pending", "ordered_map", "thread_pool"]
