"""Explainability: effective receptive fields (paper Sec. 4), their metrics, captum attributions
and HCT attention maps, and the figures that show them."""

from hct.explain.attention_maps import AttentionMap, attention_layer, attention_map, attention_received, layer_input
from hct.explain.attribution import (
    METHODS, Attribution, attribute, gradcam, gradcam_layers, integrated_gradients, malignancy_probability, occlusion,
    occlusion_window, saliency, smoothgrad,
)
from hct.explain.erf import (
    REDUCTIONS, SUBSETS, ComputationCancelled, ERFResult, compute_erf, curve_band, curves_frame, erf_from_maps,
    input_gradients, output_position, select_subset,
)
from hct.explain.inputs import as_batch, eval_mode
from hct.explain.figures import erf_curves, erf_heatmaps, erf_summary_figure, heatmap_overlay
from hct.explain.metrics import AREA_SHARES, area_shares, erf_metrics, gaussian_fit_r2

__all__ = [
    "AREA_SHARES", "METHODS", "REDUCTIONS", "SUBSETS", "AttentionMap", "Attribution", "ComputationCancelled",
    "ERFResult", "area_shares", "as_batch", "attention_layer", "attention_map", "attention_received", "attribute",
    "compute_erf", "curve_band", "curves_frame", "erf_curves", "erf_from_maps", "erf_heatmaps", "erf_metrics",
    "erf_summary_figure", "eval_mode", "gaussian_fit_r2", "gradcam", "gradcam_layers", "heatmap_overlay",
    "input_gradients", "integrated_gradients", "layer_input", "malignancy_probability", "occlusion",
    "occlusion_window", "output_position", "saliency", "select_subset", "smoothgrad",
]
