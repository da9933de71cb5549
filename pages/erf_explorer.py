"""ERF explorer: effective receptive fields of several models over the same N images, side by side,
and the paper's Table 1 / Table A2 in one action."""

import streamlit as st

from hct.data import sample_images
from hct.explain import (
    DEFAULT_REDUCTION,
    NORMALISATIONS,
    REDUCTIONS,
    SCALES,
    STAGES,
    SUBSETS,
    MapView,
    curves_frame,
    erf_curves,
    erf_heatmaps,
    erf_small_multiples,
    erf_summary_figure,
    table1_figure,
)
from hct.explain.display.outputs import metrics_frame, write_erf_outputs, write_table1
from hct.reports import figures_html

from app import compute, loaders, state, tasks, widgets
from app.state import ImageItem

REDUCTION_NAMES = {
    "mean_abs": "mean |grad| (default)",
    "mean": "signed mean (Luo et al.)",
    "positive": "mean relu(grad) (RepLKNet)",
}
REQUEST = "erf-request"
INTRO = (
    "Luo et al.'s effective receptive field as in the paper (Sec. 4): the input gradient of one output position, "
    "averaged over N images in their acquired orientation (no flip, no crop; background cleared). Choose images "
    "on the Images page."
)


def erf_form(items: list[ImageItem]) -> tuple[dict, int, bool]:
    """The ERF request the form chooses (models, size, subset, stage, reduction, position; the images are
    sampled on submit), N, and whether it was submitted."""
    with st.form("erf"):
        models = widgets.model_picker(
            "Models (two or more)", multi=True, key="erf-models", default=["init:gmic", "init:hct_performer_relu"]
        )
        cols = st.columns(4)
        subset = cols[0].radio("Breasts", SUBSETS, horizontal=True, key="erf-subset")
        n = cols[1].number_input("N images", 1, max(len(items), 1), min(8, len(items)), key="erf-n")
        with cols[2]:
            size = widgets.size_picker(models)
        stage = cols[3].selectbox(
            "Stage back-propagated",
            STAGES,
            index=len(STAGES) - 1,
            format_func=lambda s: f"{s} (output feature map)" if s == STAGES[-1] else str(s),
            key="erf-stage",
        )
        cols = st.columns([3, 1, 1, 1])
        reduction = cols[0].radio(
            "Per-image gradient",
            REDUCTIONS,
            index=REDUCTIONS.index(DEFAULT_REDUCTION),
            format_func=REDUCTION_NAMES.get,
            horizontal=True,
            key="erf-reduction",
        )
        centre = cols[1].checkbox("Centre position", value=True, help="Or type an output position, or click the map")
        row = cols[2].number_input("Output row", 0, 100_000, 0)
        col = cols[3].number_input("Output column", 0, 100_000, 0)
        submitted = st.form_submit_button("Compute ERF", type="primary")
    request = {
        "models": models,
        "size": size,
        "subset": subset,
        "stage": stage,
        "reduction": reduction,
        "position": "centre" if centre else (int(row), int(col)),
    }
    return request, int(n), submitted


def start(request: dict) -> None:
    """Compute the ERFs of ``request`` as this session's task (each image read once for all models)."""
    st.session_state[REQUEST] = request
    chosen = request["items"]
    widgets.run_safely(
        lambda: tasks.start(
            "erf",
            lambda task: compute.erfs(
                request["models"],
                chosen,
                request["size"],
                request["subset"],
                task,
                position=request["position"],
                stage=request["stage"],
                reduction=request["reduction"],
            ),
            images=len(chosen),
            size=request["size"],
            models=len(request["models"]),
        ),
        "The ERF",
    )


def sample_and_start(items: list[ImageItem], n: int, request: dict) -> None:
    """Sample ``n`` of ``items`` for the request's subset and compute the ERFs on them."""
    if not request["models"]:
        st.error("Choose at least one model (two to compare).")
        return
    chosen = widgets.run_safely(
        lambda: sample_images(
            len(items),
            n,
            subset=request["subset"],
            seed=None,
            strict=False,
            side_of=lambda i: loaders.laterality(items[i]),
        ),
        "The images",
    )
    if chosen:
        start({**request, "items": [items[i] for i in chosen]})


def view_controls() -> MapView:
    """How maps and curves are drawn; a change redraws from the maps kept at display resolution."""
    cols = st.columns(5)
    normalisation = cols[0].selectbox(
        "Normalisation",
        ["default", *NORMALISATIONS],
        help="default: unit area for mean |grad| and relu, unit peak for the signed mean",
    )
    scale = cols[1].selectbox("Map scale", SCALES, index=SCALES.index("sqrt"), key="erf-scale")
    clip = cols[2].select_slider(
        "Clip at percentile", [90.0, 95.0, 99.0, 99.5, 99.9, 100.0], value=100.0, key="erf-clip"
    )
    shared = cols[3].toggle("One colour scale", value=True)
    outline = cols[4].toggle("Breast outline", value=True)
    return MapView(
        normalisation=None if normalisation == "default" else normalisation,
        scale=scale,
        clip=clip,
        shared=shared,
        outline=outline,
    )


def show_maps(results: list, view: MapView, request: dict) -> None:
    """The maps side by side; a click moves the output position and computes every model again."""
    st.caption(
        f"Output position {results[0].position} of stage {results[0].stage} (red cross). Click a map to "
        "move it: every model's ERF is computed again for that position."
    )
    st.plotly_chart(
        erf_heatmaps(results, view, clickable=True), key="erf-maps", on_select="rerun", selection_mode="points"
    )
    clicked = widgets.clicked_point("erf-maps")
    if clicked is not None and clicked != st.session_state.get("erf-clicked"):
        st.session_state["erf-clicked"] = clicked
        position = results[0].position_at(*clicked)
        if position != results[0].position:
            start({**request, "position": position})
            st.rerun()


@st.fragment
def show_erfs(results: list, request: dict) -> None:
    """Maps, curves, per-image maps, metrics and downloads of the computed ERFs. A display control reruns
    only this part of the page (a fragment): the form and Table 1 stay as they are."""
    view = view_controls()
    show_maps(results, view, request)
    sqrt = st.toggle("Sqrt ERF curves (the paper's second pair)", value=False)
    left, right = st.columns(2)
    curves = [erf_curves(results, axis, sqrt=sqrt, normalisation=view.normalisation) for axis in ("columns", "rows")]
    left.plotly_chart(curves[0], key="erf-curve-columns")
    right.plotly_chart(curves[1], key="erf-curve-rows")
    if st.toggle(f"Per-image ERFs (the {results[0].n} images of the mean)", value=False, key="erf-per-image"):
        shown = st.selectbox("Model", range(len(results)), format_func=lambda i: results[i].model_name)
        names = [request["items"][i].name for i in results[shown].indices]
        st.plotly_chart(erf_small_multiples(results[shown], view, names=names), key="erf-multiples")
    st.subheader("ERF metrics")
    st.dataframe(metrics_frame(results), width="stretch", hide_index=True)
    cols = st.columns(4)
    cols[0].download_button(
        "Curves (CSV)",
        lambda: curves_frame(results, view.normalisation).to_csv(index=False),
        file_name="erf_curves.csv",
        mime="text/csv",
    )
    cols[1].download_button(
        "Figures (HTML)",
        lambda: figures_html([erf_heatmaps(results, view), *curves], "HCT Explorer: ERF"),
        file_name="erf.html",
        mime="text/html",
    )
    cols[2].download_button(
        "Figure (PNG)",
        lambda: widgets.png_bytes(erf_summary_figure(results, view)),
        file_name="erf.png",
        mime="image/png",
    )
    cols[3].download_button(
        "Full-resolution maps and all files (zip)",
        lambda: widgets.folder_zip(lambda folder: write_erf_outputs(results, folder, view)),
        file_name="erf.zip",
        mime="application/zip",
    )


def table1_section(items: list[ImageItem], request: dict) -> None:
    """The paper's Table 1 / A2 over the session's images with the models, size and reduction of ``request``,
    as a task with progress and cancel."""
    models, size, reduction = request["models"], request["size"], request["reduction"]
    st.header("Table 1 / Table A2")
    sides = [loaders.laterality(i) for i in items]
    per_side = min(sides.count("L"), sides.count("R"))
    st.caption(
        f"The paper's Table 1 over the session's {len(items)} images ({sides.count('R')} right, "
        f"{sides.count('L')} left breasts): rows all / right / left of N images each, the same images for "
        "every model, with the models, resolution and per-image gradient chosen above. Each image is "
        "computed once for the three rows."
    )
    with st.form("table1"):
        cols = st.columns(2)
        table_n = cols[0].number_input("N per row", 1, max(per_side, 1), max(min(100, per_side), 1), key="table1-n")
        seed = cols[1].number_input("Seed of the image sample", 0, 2**31 - 1, 0)
        clicked = st.form_submit_button("Compute Table 1", disabled=per_side == 0 or not models)
    if clicked:
        widgets.run_safely(
            lambda: tasks.start(
                "table1",
                lambda task: compute.table1(models, items, size, int(table_n), int(seed), reduction, task),
                images=min(len(items), 2 * int(table_n)),
                size=size,
                models=len(models),
            ),
            "Table 1",
        )
    table = widgets.follow("table1", "Table 1")
    if table is not None:
        st.plotly_chart(table1_figure(table.results), key="table1-grid")
        st.dataframe(table.metrics(), width="stretch", hide_index=True)
        st.download_button(
            "Table 1: PNG, HTML, CSV and maps (zip)",
            lambda: widgets.folder_zip(lambda folder: write_table1(table, folder)),
            file_name="table1.zip",
            mime="application/zip",
        )


st.title("ERF explorer")
st.caption(INTRO)
items = state.images()
request, n, submitted = erf_form(items)
widgets.untrained_note(request["models"])
if submitted:
    sample_and_start(items, n, request)
results = widgets.follow("erf", "The ERF")
if results:
    show_erfs(results, st.session_state[REQUEST])
table1_section(items, request)
