"""Explainability: effective receptive fields (paper Sec. 4), their metrics, captum attributions
and HCT attention maps, readable overlays on the image as acquired and their export, where
explanations point (localization), and the figures that show them.

The names below are imported from their modules on first use (``hct.lazy``)."""

from hct.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "hct.errors": ("ComputationCancelled",),
        "hct.explain.attention_maps": (
            "AttentionMap",
            "attention_layer",
            "attention_map",
            "attention_received",
            "layer_input",
        ),
        "hct.explain.attribution": (
            "Attribution",
            "attribute",
            "gradcam",
            "gradcam_layers",
            "integrated_gradients",
            "malignancy_probability",
            "occlusion",
            "occlusion_window",
            "saliency",
            "smoothgrad",
        ),
        "hct.explain.erf.compute": (
            "ERFResult",
            "compute_erf",
            "compute_erfs",
            "curve_band",
            "curves_frame",
            "erf_from_maps",
            "select_subset",
        ),
        "hct.explain.erf.cache": ("GradientCache",),
        "hct.explain.erf.engine": ("ERFEngine", "ImageGradient", "input_gradients", "output_position"),
        "hct.explain.display.figures": (
            "erf_curves",
            "erf_heatmaps",
            "erf_small_multiples",
            "erf_summary_figure",
            "table1_figure",
            "table1_png",
            "localization_figure",
            "picture_figure",
        ),
        "hct.explain.inputs": ("as_batch", "eval_mode"),
        "hct.explain.erf.maps": ("MapView",),
        "hct.explain.erf.metrics": ("AREA_SHARES", "area_shares", "erf_metrics", "gaussian_fit_r2"),
        "hct.explain.erf.receptive_field": ("stage_features", "stage_geometry"),
        "hct.explain.options": (
            "DEFAULT_REDUCTION",
            "LOCALIZATION_METHODS",
            "METHODS",
            "NORMALISATIONS",
            "REDUCTIONS",
            "SCALES",
            "STAGES",
            "SUBSETS",
        ),
        # the reading view
        "hct.explain.explanation": ("Explanation", "explain"),
        "hct.explain.display.export": ("secondary_capture", "source_uids"),
        "hct.explain.localization": ("finding_region", "localize", "score", "summarise"),
        "hct.explain.display.overlays": ("in_original", "overlay_picture", "png_bytes", "region_picture"),
        "hct.explain.display.readable": ("Readability", "ReadableMap", "readable"),
    },
)
