"""ERF metrics on synthetic maps whose answers are known analytically."""

import math

import numpy as np
import pytest

from hct.errors import ConfigError
from hct.explain import area_shares, erf_from_maps, erf_metrics, gaussian_fit_r2


def _gaussian(size=201, sigma=12.0, centre=(100.0, 100.0)):
    rows, cols = np.mgrid[:size, :size]
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2))


def test_centred_gaussian():
    sigma = 12.0
    metrics = erf_metrics(_gaussian(sigma=sigma))
    assert abs(metrics["offset"]) < 1e-6
    assert metrics["gaussian_r2_over_rows"] > 0.999 and metrics["gaussian_r2_over_columns"] > 0.999
    assert metrics["spread_rows"] == pytest.approx(sigma, rel=1e-3)
    for share in (20, 30, 50, 99):
        # An isotropic Gaussian holds share p within radius r: p = 1 - exp(-r^2 / 2 sigma^2).
        area = -2 * math.pi * sigma**2 * math.log(1 - share / 100)
        assert metrics[f"pixels_{share}"] == pytest.approx(area, rel=0.03, abs=3)
        assert metrics[f"area_share_{share}"] == pytest.approx(metrics[f"pixels_{share}"] / 201**2)


def test_shifted_gaussian_offset_and_fraction():
    metrics = erf_metrics(_gaussian(centre=(130.0, 80.0)))
    assert metrics["offset_row"] == pytest.approx(30, abs=1e-3)
    assert metrics["offset_col"] == pytest.approx(-20, abs=1e-3)
    assert metrics["offset_row_frac"] == pytest.approx(30 / 201, abs=1e-5)


def test_point_mass():
    erf = np.zeros((50, 40))
    erf[10, 7] = -3.0
    metrics = erf_metrics(erf, centre=(10, 7))
    assert metrics["pixels_99"] == 1 and metrics["pixels_20"] == 1
    assert metrics["offset"] == 0 and metrics["spread_rows"] == 0


def test_area_shares_counts_sorted_mass():
    assert area_shares(np.array([[4.0, 3.0], [2.0, 1.0]]), (0.4, 0.5, 0.7, 0.71, 1.0)) == {
        0.4: 1,
        0.5: 2,
        0.7: 2,
        0.71: 3,
        1.0: 4,
    }


def test_flat_curve_is_not_gaussian():
    assert gaussian_fit_r2(np.ones(100) + 0.01 * np.random.default_rng(0).standard_normal(100)) < 0.5


def test_breast_share_per_image_and_on_a_given_mask():
    maps = np.zeros((2, 10, 10), np.float32)
    maps[0, 2, 2] = 1.0  # inside image 0's mask
    maps[1, 8, 8] = 3.0  # outside image 1's mask
    masks = np.zeros((2, 10, 10), bool)
    masks[0, :5, :5] = masks[1, :5, :5] = True
    result = erf_from_maps(maps, masks=masks)
    assert erf_metrics(result)["breast_share"] == pytest.approx(0.5)  # mean of 1 and 0, whatever the magnitudes
    assert erf_metrics(result, mask=masks[0])["breast_share"] == pytest.approx(0.25)  # the mean map's mass: 1 of 4
    assert "breast_share" not in erf_metrics(erf_from_maps(maps))


def test_a_zero_map_has_no_metrics():
    with pytest.raises(ConfigError, match="zero everywhere"):
        erf_metrics(np.zeros((5, 5)))
