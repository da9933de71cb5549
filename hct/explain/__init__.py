"""Explainability: effective receptive fields (paper Sec. 4), their metrics, captum attributions
and HCT attention maps, and the figures that show them."""

from hct.errors import ComputationCancelled
from hct.explain.attention_maps import AttentionMap, attention_map, layer_input
from hct.explain.attribution import (
    METHODS, Attribution, attribute, gradcam, integrated_gradients, malignancy_probability, occlusion,
    occlusion_window, saliency,
)
from hct.explain.erf import (
    DEFAULT_REDUCTION, REDUCTIONS, SUBSETS, ERFResult, compute_erf, compute_erfs, curve_band, curves_frame,
    erf_from_maps, select_subset,
)
from hct.explain.erf_cache import GradientCache
from hct.explain.erf_engine import ERFEngine, ImageGradient, input_gradients, output_position
from hct.explain.figures import (
    erf_curves, erf_heatmaps, erf_small_multiples, erf_summary_figure, heatmap_overlay, table1_figure, table1_png,
)
from hct.explain.maps import NORMALISATIONS, SCALES, MapView
from hct.explain.metrics import AREA_SHARES, area_shares, erf_metrics, gaussian_fit_r2
from hct.explain.receptive_field import STAGES, stage_features, stage_geometry

__all__ = [
    "AREA_SHARES", "DEFAULT_REDUCTION", "METHODS", "NORMALISATIONS", "REDUCTIONS", "SCALES", "STAGES", "SUBSETS",
    "AttentionMap", "Attribution", "ComputationCancelled", "ERFEngine", "ERFResult", "GradientCache", "ImageGradient",
    "MapView", "area_shares", "attention_map", "attribute", "compute_erf", "curve_band", "curves_frame", "erf_curves",
    "erf_from_maps", "erf_heatmaps", "erf_metrics", "compute_erfs", "erf_small_multiples", "erf_summary_figure",
    "gaussian_fit_r2", "gradcam", "heatmap_overlay", "input_gradients", "integrated_gradients", "layer_input",
    "malignancy_probability", "occlusion", "occlusion_window", "output_position", "saliency", "select_subset",
    "stage_features", "stage_geometry", "table1_figure", "table1_png",
]
