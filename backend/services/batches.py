"""Long writes in bounded transactions, so other users' transactions run between them.

The embedded store runs one transaction at a time: a single transaction that writes thousands of
rows keeps every other request waiting until it commits. `run_in_batches` splits the work into
transactions of a bounded size (a count of items and a total weight, e.g. messages), each in its
own `run_in_session`; between two of them the database thread is handed to whoever waits.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from backend.core.db import run_in_session

T = TypeVar("T")
R = TypeVar("R")


def batched(
    items: Iterable[T], *, max_items: int, max_weight: int, weight: Callable[[T], int]
) -> Iterator[list[T]]:
    """Consecutive batches of at most `max_items` items and, unless a single item is heavier,
    at most `max_weight` in total."""
    batch: list[T] = []
    total = 0
    for item in items:
        cost = weight(item)
        if batch and (len(batch) >= max_items or total + cost > max_weight):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += cost
    if batch:
        yield batch


async def run_in_batches(
    fn: Callable[..., Sequence[R]],
    items: Iterable[T],
    *,
    max_items: int,
    max_weight: int,
    weight: Callable[[T], int],
    **kwargs: Any,
) -> list[R]:
    """`fn(session=..., batch=[...], **kwargs)` once per batch, each its own transaction (fn
    commits); the results of all batches, in order. A batch that fails stops the run: the
    batches before it stay committed."""
    results: list[R] = []
    for batch in batched(items, max_items=max_items, max_weight=max_weight, weight=weight):
        results.extend(await run_in_session(fn, batch=batch, **kwargs))
    return results
