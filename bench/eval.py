"""Vectorised bootstrap AUC against a straightforward loop over sklearn's roc_auc_score.

The paper's test split size: 7,358 predictions (1,195 positives, 6,163 negatives), 10,000 resamples.
The loop runs LOOP_BOOT resamples (the first rows of the same resamples) and its time is extrapolated
linearly to 10,000; the CI difference compares the vectorised 10,000-resample CI with the CI of a
loop over the same 10,000 resamples only with --full-loop (slow), otherwise over the first LOOP_BOOT.

    python bench/eval.py [--full-loop]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from hct.eval import bootstrap_auc, bootstrap_indices, resample_aucs

N_POS, N_NEG, N_BOOT, LOOP_BOOT, SEED = 1195, 6163, 10_000, 1_000, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full-loop", action="store_true", help="run the sklearn loop for all 10,000 resamples")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(N_POS, int), np.zeros(N_NEG, int)]
    scores = np.round(1 / (1 + np.exp(-np.r_[rng.normal(1.5, 1, N_POS), rng.normal(0, 1, N_NEG)])), 4)  # some ties

    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = bootstrap_auc(labels, scores, n_boot=N_BOOT, seed=SEED)
        times.append(time.perf_counter() - start)
    fast = min(times)

    loop_boot = N_BOOT if args.full_loop else LOOP_BOOT
    start = time.perf_counter()
    idx = bootstrap_indices(labels.size, loop_boot, seed=SEED)
    loop = np.array([roc_auc_score(labels[row], scores[row]) for row in idx])
    slow = (time.perf_counter() - start) * N_BOOT / loop_boot

    same = resample_aucs(labels, [scores], n_boot=loop_boot, seed=SEED)[0][:, 0]
    per_resample = np.abs(same - loop).max()
    ci_loop = np.quantile(loop, [0.025, 0.975])
    ci_fast = np.quantile(same, [0.025, 0.975])
    print(f"n={labels.size} ({N_POS} pos, {N_NEG} neg), n_boot={N_BOOT}")
    print(
        f"vectorised: {fast:.3f} s (best of 3: {', '.join(f'{t:.3f}' for t in times)}); "
        f"AUC {result.auc:.4f} [{result.low:.4f}, {result.high:.4f}], skipped {result.n_skipped}"
    )
    note = "" if args.full_loop else f" (ran {loop_boot}, x{N_BOOT // loop_boot} extrapolated)"
    print(f"sklearn loop: {slow:.1f} s{note}")
    print(f"speed-up: {slow / fast:.0f}x")
    print(f"max |AUC difference| per resample over {loop_boot} shared resamples: {per_resample:.2e}")
    print(f"max |CI bound difference| on those {loop_boot} resamples: {np.abs(ci_fast - ci_loop).max():.2e}")


if __name__ == "__main__":
    main()
