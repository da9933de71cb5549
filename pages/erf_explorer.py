"""ERF explorer: effective receptive fields of two or more models over the same N images, side by side."""

import pandas as pd
import streamlit as st

from hct.explain import SUBSETS, MapView, curves_frame, erf_curves, erf_heatmaps, erf_metrics, erf_summary_figure, select_subset
from hct.reports import figures_html

from app import state, widgets

RESULTS = "erf_results"
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
    size = cols[2].selectbox("Resolution (HxW)", state.size_options(), index=state.size_options().index(state.default_size()))
    compute = st.form_submit_button("Compute ERF", type="primary")
widgets.untrained_note(models)
if st.session_state.pop("erf-cancelled", False):
    st.warning("ERF computation cancelled; nothing was kept.")


def run(models: list[str], chosen: list) -> list:
    with st.status(f"Computing the ERF of {len(models)} models over {len(chosen)} images at {size}…", expanded=True) as status:
        st.button("Cancel", key="erf-cancel", on_click=lambda: st.session_state.update({"erf-cancelled": True}))
        results = [widgets.erf(key, chosen, size) for key in models]
        status.update(label="ERF computed", state="complete", expanded=False)
    return results


if compute:
    if len(models) < 1:
        st.error("Choose at least one model (two to compare).")
    else:
        lateralities = [i.record.laterality for i in items]
        indices = widgets.run_safely(lambda: select_subset(lateralities, subset, len(items)), "Choosing images")
        if indices is not None:
            chosen = [items[i] for i in indices[:n]]
            results = widgets.run_safely(lambda: run(models, chosen), "The ERF")
            if results is not None:
                st.session_state[RESULTS] = (results, subset)

if RESULTS not in st.session_state:
    st.stop()
results, subset = st.session_state[RESULTS]
sqrt = st.toggle("Square root (the paper's Sqrt ERF)", value=False)
st.plotly_chart(erf_heatmaps(results, MapView(scale="sqrt" if sqrt else "linear")), key="erf-maps")
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
cols[1].download_button("Figures (HTML)", lambda: figures_html([erf_heatmaps(results, MapView(scale="sqrt" if sqrt else "linear")), *curves], "HCT Explorer: ERF"),
                        file_name="erf.html", mime="text/html")
cols[2].download_button("Figure (PNG)", lambda: widgets.png_bytes(erf_summary_figure(results)),
                        file_name="erf.png", mime="image/png")
