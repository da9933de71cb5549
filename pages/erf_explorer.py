"""ERF explorer: effective receptive fields of two or more models over the same N images, side by side."""

import pandas as pd
import streamlit as st

from hct.explain import SUBSETS, curves_frame, erf_curves, erf_heatmaps, erf_metrics, erf_summary_figure, select_subset
from hct.reports import figures_html

from app import compute, state, widgets

st.title("ERF explorer")
st.caption("Luo et al.'s effective receptive field as in the paper (Sec. 4): the input gradient of the centre "
           "output position, averaged over N images. Choose images on the Images page.")

items = state.images()
with st.form("erf"):
    models = widgets.model_picker("Models (two or more)", multi=True, key="erf-models",
                                  default=["init:gmic", "init:hct_performer_relu"])
    cols = st.columns(3)
    subset = cols[0].radio("Breasts", SUBSETS, horizontal=True)
    n = cols[1].number_input("N images", 1, max(len(items), 1), min(8, len(items)))
    with cols[2]:
        size = widgets.size_picker(models)
    compute_clicked = st.form_submit_button("Compute ERF", type="primary")
widgets.untrained_note(models)


def start(models: list[str], chosen: list, size: str, subset: str) -> None:
    compute.start("erf", lambda task: [compute.erf(k, chosen, size, subset, task) for k in models],
                  images=len(chosen), size=size, models=len(models))


if compute_clicked:
    if len(models) < 1:
        st.error("Choose at least one model (two to compare).")
    else:
        lateralities = [i.record.laterality for i in items]
        indices = widgets.run_safely(lambda: select_subset(lateralities, subset, len(items)), "Choosing images")
        if indices is not None:
            widgets.run_safely(lambda: start(models, [items[i] for i in indices[:n]], size, subset), "The ERF")

results = widgets.follow("erf", "The ERF")
if results is None:
    st.stop()
sqrt = st.toggle("Square root (the paper's Sqrt ERF)", value=False)
st.plotly_chart(erf_heatmaps(results, sqrt=sqrt), key="erf-maps")
left, right = st.columns(2)
curves = [erf_curves(results, "columns", sqrt=sqrt), erf_curves(results, "rows", sqrt=sqrt)]
left.plotly_chart(curves[0], key="erf-curve-columns")
right.plotly_chart(curves[1], key="erf-curve-rows")

st.subheader("ERF metrics")
metrics = pd.DataFrame({f"{r.model_name} ({r.subset}, N={r.n})": erf_metrics(r) for r in results})
st.dataframe(metrics, width="stretch")

cols = st.columns(3)
cols[0].download_button("Curves (CSV)", lambda: curves_frame(results).to_csv(index=False),
                        file_name="erf_curves.csv", mime="text/csv")
cols[1].download_button("Figures (HTML)", lambda: figures_html([erf_heatmaps(results, sqrt), *curves], "HCT Explorer: ERF"),
                        file_name="erf.html", mime="text/html")
cols[2].download_button("Figure (PNG)", lambda: widgets.png_bytes(erf_summary_figure(results)),
                        file_name="erf.png", mime="image/png")
