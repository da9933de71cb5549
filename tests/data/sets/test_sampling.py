"""The one image sampler: N images of a subset in a seeded order, lateralities asked lazily, clear errors."""

import random

import pytest

from hct.data.sets.sampling import sample_images, seeded_order
from hct.errors import ConfigError

SIDES = "LRLLRRLRLR"  # image i's laterality


def test_a_seed_picks_the_same_images_and_another_seed_others():
    first = sample_images(10, 4, seed=3)
    assert first == sample_images(10, 4, seed=3) != sample_images(10, 4, seed=4)
    assert first == seeded_order(10, 3)[:4] and len(set(first)) == 4
    order = list(range(10))
    random.Random(3).shuffle(order)
    assert seeded_order(10, 3) == order and seeded_order(10, None) == list(range(10))


def test_a_subset_keeps_its_side_and_asks_lateralities_only_until_n_are_found():
    asked = []
    chosen = sample_images(10, 2, subset="left", seed=None, side_of=lambda i: asked.append(i) or SIDES[i])
    assert chosen == [0, 2] and asked == [0, 1, 2]
    assert all(SIDES[i] == "R" for i in sample_images(10, subset="right", seed=1, side_of=SIDES.__getitem__))
    assert sorted(sample_images(10, subset="right", seed=1, side_of=SIDES.__getitem__)) == [1, 4, 5, 7, 9]


def test_too_few_images_is_a_clear_error_unless_fewer_are_fine():
    with pytest.raises(
        ConfigError, match="N = 6 is more than the 5 left breast images among the 10 images; lower N to at most 5"
    ):
        sample_images(10, 6, subset="left", side_of=SIDES.__getitem__)
    assert len(sample_images(10, 6, subset="left", side_of=SIDES.__getitem__, strict=False)) == 5
    with pytest.raises(ConfigError, match="no right breast images among the 2 images"):
        sample_images(2, 1, subset="right", side_of=lambda i: "L", strict=False)
    with pytest.raises(ConfigError, match="unknown subset 'top'"):
        sample_images(10, 1, subset="top", side_of=SIDES.__getitem__)
    with pytest.raises(ConfigError, match="N must be at least 1"):
        sample_images(10, 0)
