"""Attention: the radiologist's reading view. One mammogram, or a four-view exam, as acquired, with
readable overlays of every method, where an HCT position attends, the single-image ERF, and for an
image with a finding, where each map points. The views are drawn by ``app.reading``."""

import streamlit as st

from hct.data import complete_exams, exam_label
from hct.explain import METHODS, gradcam_layers

from app import loaders, reading, state, widgets
from app.state import ImageItem

EXAM, IMAGE = "Four-view exam", "One image"
VIEWS = ["Overlays", "Attention of a position", "Single-image ERF"]
GMIC_VIEW = "GMIC: saliency maps and crops"  # NYU's GMIC only
SLOW = "Integrated gradients, SmoothGrad and occlusion take many passes: slow on a CPU."
LAYER_HELP = "The last stage is the coarsest (HCT: 1/128 of the input); an earlier stage gives a finer map."


def model_layers(model_key: str) -> list[str] | None:
    """Load the model; its Grad-CAM layers, or None when it did not load (the reason shown)."""
    loaded = widgets.run_safely(lambda: loaders.model(model_key), "Loading the model")
    return None if loaded is None else list(gradcam_layers(loaded.model))


def layer_picker(layers: list[str]) -> str:
    """The Grad-CAM layer, the last stage by default."""
    return st.selectbox("Grad-CAM layer", layers, index=len(layers) - 1, key="attn-gradcam-layer", help=LAYER_HELP)


def exam_reading(cols: list, exams: dict, model_key: str, size: str) -> None:
    """A four-view exam hung as read, with one method's overlay and the breast scores."""
    layers = model_layers(model_key)
    if layers is None:
        return
    names = list(exams)
    exam = cols[0].selectbox("Exam", names, format_func=lambda e: exam_label(e, names.index(e)), key="attn-exam-id")
    method = cols[3].selectbox("Overlay", METHODS, key="attn-exam-method", help=SLOW)
    layer = layer_picker(layers)
    for view in exams[exam]:
        reading.modality_warning(view)
    reading.exam_view(model_key, exams[exam], size, method, layer, reading.display_options(None))


def image_reading(cols: list, items: list[ImageItem], model_key: str, size: str) -> None:
    """One image as acquired, in tabs: overlays, the attention of a position, the single-image ERF (and NYU
    GMIC's own maps and crops); only the open tab computes."""
    layers = model_layers(model_key)
    if layers is None:
        return
    item = cols[0].selectbox(
        "Image", items, format_func=lambda i: f"{i.name} ({i.record.laterality}-{i.record.view})", key="attn-image"
    )
    methods = cols[3].multiselect("Methods", METHODS, default=["gradcam", "saliency"], key="attn-methods", help=SLOW)
    layer = layer_picker(layers)
    if widgets.run_safely(lambda: reading.modality_warning(item), f"Reading {item.name}") is None:
        return
    display = reading.display_options(item)
    if loaders.choice(model_key).architecture == "nyu_gmic":
        gmic, overlays, attention, erf = st.tabs([GMIC_VIEW, *VIEWS], key="attn-view", on_change="rerun")
        if gmic.open:
            with gmic:
                reading.gmic_view(model_key, item, size, display)
    else:
        overlays, attention, erf = st.tabs(VIEWS, key="attn-view", on_change="rerun")  # only the open one runs
    if overlays.open:
        with overlays:
            reading.overlays_view(model_key, item, size, methods, layer, display)
    if attention.open:
        with attention:
            reading.attention_view(model_key, item, size, display)
    if erf.open:
        with erf:
            reading.erf_view(model_key, item, size, display)


st.title("Attention")
items = state.images()
if not items:
    st.info("No image selected: choose one on the Images page.")
    st.stop()
exams = complete_exams(items, record=lambda i: i.record)
modes = [IMAGE, EXAM] if exams else [IMAGE]
mode = st.segmented_control("Read", modes, default=modes[0], key="attn-mode") or modes[0]
cols = st.columns(4)
with cols[1]:
    model_key = widgets.model_picker("Model", multi=False, key="attn-model", default=["init:hct_performer_relu"])
with cols[2]:
    size = widgets.size_picker([model_key])
widgets.untrained_note([model_key])
if mode == EXAM:
    exam_reading(cols, exams, model_key, size)
else:
    image_reading(cols, items, model_key, size)
