"""Batches are bounded by count and by weight, keep order, and lose nothing."""

from backend.services.batches import batched


def test_batches_respect_both_bounds_and_keep_every_item_in_order() -> None:
    weights = [1, 5, 2, 2, 9, 1, 1, 1, 1, 1, 30, 2]
    batches = list(batched(weights, max_items=4, max_weight=10, weight=lambda w: w))
    assert [w for batch in batches for w in batch] == weights
    for batch in batches:
        assert len(batch) <= 4
        assert sum(batch) <= 10 or len(batch) == 1  # one heavier item goes alone
    assert [30] in batches


def test_no_items_no_batches() -> None:
    assert list(batched([], max_items=3, max_weight=3, weight=lambda w: w)) == []
