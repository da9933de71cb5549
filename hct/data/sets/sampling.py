"""The one image sampler: N images of a subset (all, left or right breasts) in a seeded random order.

The command line (``erf``, ``table1``), the app (Images, ERF explorer) and Table 1 all draw images
through it, so one seed picks the same images everywhere. Lateralities are asked lazily, only until
N images are found: reading one can mean opening the file.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from hct.data.records import SIDE_NAMES
from hct.errors import ConfigError

SUBSETS = ("all", *SIDE_NAMES.values())  # all, left, right breasts


def subset_laterality(subset: str) -> str | None:
    """The laterality (``'L'``/``'R'``) a subset keeps; ``None`` for ``all``."""
    if subset not in SUBSETS:
        raise ConfigError(f"unknown subset {subset!r}; choose one of {SUBSETS}")
    return next((side for side, name in SIDE_NAMES.items() if name == subset), None)


def seeded_order(count: int, seed: int | None) -> list[int]:
    """``range(count)`` in the random order of ``seed`` (``None``: in order)."""
    order = list(range(count))
    if seed is not None:
        random.Random(seed).shuffle(order)
    return order


def sample_images(
    count: int,
    n: int | None = None,
    *,
    subset: str = "all",
    seed: int | None = 0,
    side_of: Callable[[int], str] | None = None,
    strict: bool = True,
) -> list[int]:
    """Indices of ``n`` of ``count`` images of ``subset``, in the order of :func:`seeded_order`
    (``n=None``: every image of the subset). ``side_of(i)`` gives image ``i``'s laterality (needed for
    ``left``/``right``). Fewer than ``n`` is a clear error naming how many there are, unless not
    ``strict`` (then as many as there are; none is still an error)."""
    if n is not None and n < 1:
        raise ConfigError(f"N must be at least 1, got {n}")
    wanted = subset_laterality(subset)
    if wanted is not None and side_of is None:
        raise ConfigError(f"subset {subset!r} needs the images' lateralities ('L'/'R')")
    chosen = []
    for i in seeded_order(count, seed):
        if wanted is None or str(side_of(i) or "").upper()[:1] == wanted:
            chosen.append(i)
            if len(chosen) == n:
                return chosen
    breasts = "images" if wanted is None else f"{subset} breast images"
    if not chosen:
        raise ConfigError(f"no {breasts} among the {count} images; choose another subset or add images")
    if n is not None and strict:
        raise ConfigError(
            f"N = {n} is more than the {len(chosen)} {breasts} among the {count} images; "
            f"lower N to at most {len(chosen)} or add images"
        )
    return chosen
