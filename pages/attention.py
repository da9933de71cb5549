"""Attention: one mammogram, one model — the malignancy probability, attribution overlays, where an HCT
position attends, and the single-image ERF."""

import streamlit as st

from hct.explain import METHODS, erf_curves, heatmap_overlay
from hct.explain.attention_maps import upsample

from app import compute, loaders, state, widgets

st.title("Attention")
items = state.images()
if not items:
    st.info("No image selected: choose one on the Images page.")
    st.stop()
cols = st.columns(3)
item = cols[0].selectbox("Image", items, format_func=lambda i: f"{i.name} ({i.record.laterality}-{i.record.view})")
model_key = widgets.model_picker("Model", multi=False, key="attn-model", default=["init:hct_performer_relu"])
with cols[1]:
    size = widgets.size_picker([model_key])
methods = cols[2].multiselect("Attribution methods", METHODS, default=["gradcam", "saliency"],
                              help="Integrated gradients and occlusion take many forward passes: slow on a CPU.")
widgets.untrained_note([model_key])

loaded = widgets.run_safely(lambda: loaders.model(model_key), "Loading the model")
image = widgets.run_safely(lambda: loaders.preprocessed(item, size), f"Reading {item.name}")
if loaded is None or image is None:
    st.stop()
model = loaded.model
pixels = image.tensor[0].numpy()
opacity = st.slider("Heat-map opacity", 0.0, 1.0, 0.45)

tabs = st.tabs(["Attributions", "Attention of a position", "Single-image ERF"])
with tabs[0]:
    compute.start("attn-attributions", lambda task: compute.attributions(model_key, item, size, methods, task),
                  images=1, size=size, inputs=(model_key, item.key, size, tuple(methods)))
    done = widgets.follow("attn-attributions", "Explaining") or {}
    if done:
        st.metric("Malignancy probability", f"{next(iter(done.values())).probability:.1%}")
    for column, (method, attr) in zip(st.columns(max(len(done), 1)), done.items()):
        column.plotly_chart(heatmap_overlay(pixels, attr.heatmap, opacity, title=method.replace("_", " ")),
                            key=f"attr-{method}")

with tabs[1]:
    layers = list(model.attention_layers())
    if not layers:
        st.info(f"{loaders.choice(model_key).label} has no attention layers: attention maps need an HCT model.")
    else:
        clicked = widgets.clicked_point("attn-click")
        if clicked is not None:
            st.session_state["attn-row"], st.session_state["attn-col"] = (min(int(v), s - 1) for v, s in zip(clicked, pixels.shape))
        cols = st.columns(4)
        layer = cols[0].selectbox("Layer", layers)
        head = cols[1].selectbox("Head", ["mean", *range(model.config.heads)])
        row = cols[2].number_input("Query row", 0, pixels.shape[0] - 1, pixels.shape[0] // 2, key="attn-row")
        col = cols[3].number_input("Query column", 0, pixels.shape[1] - 1, pixels.shape[1] // 2, key="attn-col")
        compute.start("attn-map", lambda task: compute.attention(model_key, item, size, (row, col), layer, task),
                      images=1, size=size, inputs=(model_key, item.key, size, row, col, layer))
        result = widgets.follow("attn-map", "The attention map")
        if result is not None:
            heat = result.upsampled if head == "mean" else upsample(result.heads[head], pixels.shape)
            st.caption("Click a point on the image (or type its row and column) to see where that position attends.")
            st.plotly_chart(heatmap_overlay(pixels, heat, opacity, title=f"{layer}, head {head}", marker=result.query_input,
                                            click_grid=max(1, min(pixels.shape) // 40)),
                            key="attn-click", on_select="rerun", selection_mode="points")

with tabs[2]:
    if st.button("Compute the ERF of this image"):
        compute.start("attn-erf", lambda task: compute.erf(model_key, [item], size, "all", task), images=1, size=size)
    result = widgets.follow("attn-erf", "The ERF")
    if result is not None and result.shape == pixels.shape:
        st.plotly_chart(heatmap_overlay(pixels, result.sqrt_map, opacity, title="sqrt |ERF| of the centre output position",
                                        marker=result.input_centre), key="attn-erf-map")
        left, right = st.columns(2)
        left.plotly_chart(erf_curves([result], "columns", band=None), key="attn-erf-cols")
        right.plotly_chart(erf_curves([result], "rows", band=None), key="attn-erf-rows")
