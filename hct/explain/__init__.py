"""Explainability: effective receptive fields (paper Sec. 4), their metrics, captum attributions
and HCT attention maps, readable overlays on the image as acquired and their export, where
explanations point (localization), and the figures that show them."""

from hct.errors import ComputationCancelled
from hct.explain.attention_maps import AttentionMap, attention_layer, attention_map, attention_received, layer_input
from hct.explain.attribution import (
    METHODS, Attribution, attribute, gradcam, gradcam_layers, integrated_gradients, malignancy_probability, occlusion,
    occlusion_window, saliency, smoothgrad,
)
from hct.explain.erf import (
    DEFAULT_REDUCTION, REDUCTIONS, SUBSETS, ERFResult, compute_erf, compute_erfs, curve_band, curves_frame,
    erf_from_maps, select_subset,
)
from hct.explain.erf_cache import GradientCache
from hct.explain.erf_engine import ERFEngine, ImageGradient, input_gradients, output_position
from hct.explain.figures import (
    erf_curves, erf_heatmaps, erf_small_multiples, erf_summary_figure, table1_figure, table1_png,
)
from hct.explain.inputs import as_batch, eval_mode
from hct.explain.maps import NORMALISATIONS, SCALES, MapView
from hct.explain.metrics import AREA_SHARES, area_shares, erf_metrics, gaussian_fit_r2
from hct.explain.receptive_field import STAGES, stage_features, stage_geometry
# the reading view
from hct.explain.export import secondary_capture, source_uids
from hct.explain.figures import localization_figure, picture_figure
from hct.explain.localization import LOCALIZATION_METHODS, finding_region, localize, score, summarise
from hct.explain.overlays import in_original, overlay_picture, png_bytes, region_picture
from hct.explain.readable import Readability, ReadableMap, readable

__all__ = [
    "AREA_SHARES", "DEFAULT_REDUCTION", "METHODS", "NORMALISATIONS", "REDUCTIONS", "SCALES", "STAGES", "SUBSETS",
    "AttentionMap", "Attribution", "ComputationCancelled", "ERFEngine", "ERFResult", "GradientCache", "ImageGradient",
    "MapView", "area_shares", "as_batch", "attention_layer", "attention_map", "attention_received", "attribute",
    "compute_erf", "compute_erfs", "curve_band", "curves_frame", "erf_curves", "erf_from_maps", "erf_heatmaps",
    "erf_metrics", "erf_small_multiples", "erf_summary_figure", "eval_mode", "gaussian_fit_r2", "gradcam",
    "gradcam_layers", "input_gradients", "integrated_gradients", "layer_input", "malignancy_probability", "occlusion",
    "occlusion_window", "output_position", "saliency", "select_subset", "smoothgrad", "stage_features",
    "stage_geometry", "table1_figure", "table1_png",
    "LOCALIZATION_METHODS", "Readability", "ReadableMap", "finding_region", "in_original", "localization_figure",
    "localize", "overlay_picture", "picture_figure", "png_bytes", "readable", "region_picture", "score",
    "secondary_capture", "source_uids", "summarise",
]
