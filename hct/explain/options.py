"""The explain layer's choices that the command line and the app offer (light: building a parser
imports nothing heavy): attribution methods, ERF subsets, reductions and stages, map display."""

from __future__ import annotations

import os
from pathlib import Path

from hct.data.sets.sampling import SUBSETS as SUBSETS  # ERF subsets: the sampler's (re-exported)

METHODS = ("gradcam", "saliency", "smoothgrad", "integrated_gradients", "occlusion")  # hct.explain.attribute
LOCALIZATION_METHODS = (*METHODS, "attention")
TOLERANCE = 15  # pointing-game tolerance, pixels at model resolution
REDUCTIONS = ("mean", "mean_abs", "positive")  # per-image ERF gradient
DEFAULT_REDUCTION = "mean_abs"
STAGES = (1, 2, 3, 4, 5)  # whose output position an ERF back-propagates
NORMALISATIONS = ("area", "peak", "none")
SCALES = ("linear", "sqrt", "log10", "power_0.25")


def default_cache_dir() -> Path:
    """Where ERF gradients are cached: ``$HCT_CACHE_DIR/erf``, else ``$XDG_CACHE_HOME/hct/erf``, else ``~/.cache/hct/erf``."""
    if os.environ.get("HCT_CACHE_DIR"):
        return Path(os.environ["HCT_CACHE_DIR"]) / "erf"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hct" / "erf"
