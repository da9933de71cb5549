"""The reading view's pieces (Attention page): display options, pictures of overlays on the image as
acquired with what made them, the full-resolution zoom, downloads, localization numbers, and the
views of one image (overlays, attention of a position, single-image ERF) and of an exam.

Each view runs its computation only when drawn; a result is drawn only with the model, image, size
(and position) that made it, which its caption states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from hct.data import Preprocessed, breast_scores, view_name
from hct.explain import (
    Attribution,
    Explanation,
    Readability,
    erf_curves,
    finding_region,
    picture_figure,
    score,
)
from hct.explain.attention_maps import upsample
from hct.explain.display.export import source_uids
from hct.explain.display.overlays import display_factor, point_in_model
from hct.explain.display.readable import sigma_unit
from hct.explain.localization import check_boxes

from app import compute, loaders, pacs, tasks, widgets
from app.state import ImageItem

METHOD_NAMES = {
    "gradcam": "Grad-CAM",
    "saliency": "saliency",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "integrated gradients",
    "occlusion": "occlusion",
}


@dataclass(frozen=True)
class Display:
    """How maps are drawn: opacity, readability and window/level (changing any recomputes no map)."""

    opacity: float
    readability: Readability
    window_level: tuple[float, float] | None = None


def modality_warning(item: ImageItem) -> bool:
    """Read the item (once per process) and show the reader's warning, visibly: another modality than MG,
    NaN pixels masked, a multi-page TIFF, 12-bit overflow, an unusable spacing or window; True once read."""
    warning = loaders.image_meta(item).warning
    if warning:
        st.warning(f"{item.name}: {warning}")
    return True


def display_options(item: ImageItem | None) -> Display:
    """The display controls; window and level (one image only) start at the image's output range
    (after its VOI LUT, which reading applied once)."""
    with st.expander("Display: opacity, colour scale, smoothing, outline, window/level"):
        cols = st.columns(4)
        opacity = cols[0].slider("Heat-map opacity", 0.0, 1.0, 0.5, key="attn-opacity")
        percentile = cols[1].slider(
            "Clip colours at percentile",
            90.0,
            100.0,
            99.5,
            0.1,
            key="attn-percentile",
            help="Robust scaling: a few extreme pixels no longer set the colour scale.",
        )
        spacing = loaders.image_meta(item).pixel_spacing if item else None
        sigma = cols[2].number_input(
            f"Smoothing sigma ({sigma_unit(spacing)})",
            0.0,
            50.0,
            0.0,
            0.5,
            key="attn-sigma",
            help="Millimetres where the image's pixel spacing is known, pixels otherwise; 0: none.",
        )
        top = cols[3].slider(
            "Outline the top share of the mass (%)", 0, 95, 50, 5, key="attn-top", help="0: no outline."
        )
        window_level = None
        if item is not None:
            low, high = widgets.pixel_range(loaders.read_image(item).pixels)
            left, right = st.columns(2)
            level = left.slider("Level", low, high, (low + high) / 2, key=f"attn-level-{item.key}")
            window = right.slider(
                "Window", 1.0, max(high - low, 1.0), max(high - low, 1.0), key=f"attn-window-{item.key}"
            )
            window_level = (window, level)
    return Display(opacity, Readability(percentile, sigma, top / 100 or None), window_level)


def explained(
    item: ImageItem,
    pre: Preprocessed,
    heatmap: np.ndarray | None,
    what: str,
    display: Display,
    query: tuple[float, float] | None = None,
) -> Explanation:
    """The item explained by a (cached) ``heatmap`` made through ``pre``, drawn as ``display`` says
    (:class:`hct.explain.Explanation`: the CLI's ``explain`` makes the same object); None: the image alone."""
    return Explanation(loaders.read_image(item), pre, heatmap, what, display.readability, query=query)


def made_by(model_key: str, item: ImageItem, size: str, what: str) -> str:
    """The caption every drawn result carries: what it is, and the model, image and size that made it."""
    return f"{what} · {loaders.choice(model_key).label} · {item.name} · {size}"


def method_name(attribution: Attribution) -> str:
    """'Grad-CAM at stages.4', 'saliency', ..."""
    name = METHOD_NAMES.get(attribution.method, attribution.method)
    return f"{name} at {attribution.layer}" if attribution.layer else name


def _selected_box(key: str) -> tuple[float, float, float, float] | None:
    """``(row0, col0, row1, col1)`` in display pixels of the box last drawn on chart ``key``."""
    event = st.session_state.get(key)
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {}) or {}
    boxes = selection.get("box", []) if isinstance(selection, dict) else getattr(selection, "box", [])
    if not boxes:
        return None
    xs, ys = boxes[0]["x"], boxes[0]["y"]
    return min(ys), min(xs), max(ys), max(xs)


def draw(
    item: ImageItem,
    shown: Explanation,
    display: Display,
    caption: str,
    key: str,
    click_grid: int | None = None,
    height: int = 640,
    outlines: Sequence[tuple[int, int, int, int]] = (),
) -> None:
    """The image as acquired at display resolution with ``shown``'s map over it, its attention query
    marked, and its caption; the finding boxes and ``outlines`` (original pixels) outlined. Without a click
    grid, a box drawn on it shows that region at full resolution below."""
    window, level = display.window_level or (None, None)
    picture = shown.overlay(display.opacity, window, level, pixels=loaders.display_pixels(item))
    factor = display_factor(shown.image.pixels.shape)
    boxes = [tuple(v * factor for v in box) for box in (*item.record.finding_boxes, *outlines)]
    figure = picture_figure(picture, marker=shown.marker(), click_grid=click_grid, boxes=boxes, height=height)
    st.plotly_chart(
        figure,
        key=key,
        on_select="rerun",
        selection_mode="points" if click_grid else "box",
        config={"displaylogo": False},
    )
    st.caption(caption)
    box = None if click_grid else _selected_box(key)
    if box is not None:
        region = tuple(int(round(v / factor)) for v in box)
        zoom = widgets.run_safely(lambda: shown.region(region, display.opacity, window, level), "The zoom")
        if zoom is not None:
            st.image(zoom, caption=f"Full resolution: rows {region[0]}–{region[2]}, columns {region[1]}–{region[3]}")


def downloads(item: ImageItem, shown: Explanation, display: Display, what: str, key: str) -> None:
    """The overlay at full resolution as PNG and as a DICOM Secondary Capture, made when clicked."""
    image = shown.image
    window, level = display.window_level or (None, None)
    cols = st.columns([1, 1, 2])
    reference = cols[2].checkbox(
        "Reference the source study (for the hospital's PACS)",
        key=f"{key}-ref",
        disabled=image.meta.file_format != "DICOM",
        help="The Secondary Capture never holds patient identity; this adds the study's UIDs only.",
    )

    def capture() -> bytes:
        uids = source_uids(item.data if item.data is not None else item.record.path) if reference else None
        return shown.secondary_capture(f"HCT Explorer {what} overlay", display.opacity, uids, window, level)

    stem = f"{item.name.replace('/', '_')}_{what.replace(' ', '_')}"
    cols[0].download_button(
        "PNG",
        data=lambda: shown.png(display.opacity, window, level),
        file_name=f"{stem}.png",
        mime="image/png",
        key=f"{key}-png",
        on_click="ignore",
    )
    cols[1].download_button(
        "DICOM",
        data=capture,
        file_name=f"{stem}.dcm",
        mime="application/dicom",
        key=f"{key}-dcm",
        on_click="ignore",
        help="A Secondary Capture a DICOM viewer opens.",
    )


def localization_table(pre: Preprocessed, item: ImageItem, maps: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per method: the energy inside the finding (its ROI masks, else its boxes), the pointing-game hit
    and the finding's area share."""
    mask, region = finding_region(pre, item.record)
    rows = [{"method": name, **score(heatmap, mask), "finding outlined by": region} for name, heatmap in maps.items()]
    return pd.DataFrame(rows).rename(
        columns={
            "energy": "energy inside the finding",
            "hit": "pointing-game hit (15 px)",
            "finding_area_px": "finding area (model pixels)",
            "area_share": "area share (a uniform map's energy)",
        }
    )


def overlays_view(
    model_key: str, item: ImageItem, size: str, methods: Sequence[str], layer: str, display: Display
) -> None:
    """Every chosen method's map over the image as acquired, its downloads, and where it points."""
    if not methods:
        st.info("Choose at least one method.")
        return
    widgets.run_safely(
        lambda: tasks.start(
            "attn-overlays",
            lambda task: compute.attributions(model_key, item, size, methods, task, layer),
            images=1,
            size=size,
            inputs=(model_key, item.key, size, tuple(methods), layer),
        ),
        "Explaining",
    )
    done = widgets.follow("attn-overlays", "Explaining")
    if not done:
        return
    pre = loaders.preprocessed(item, size, loaders.input_mode(model_key))
    st.metric("Malignancy probability", f"{next(iter(done.values())).probability:.1%}")
    columns = st.columns(min(len(done), 2))
    maps = {}
    for i, (method, attribution) in enumerate(done.items()):
        name = method_name(attribution)
        maps[name] = attribution.heatmap
        with columns[i % len(columns)]:
            shown = explained(item, pre, attribution.heatmap, name, display)
            draw(item, shown, display, made_by(model_key, item, size, name), key=f"attn-{method}")
            downloads(item, shown, display, method, key=f"attn-{method}")
    st.caption("Draw a box on a picture to see that region at full resolution.")
    if item.record.finding_boxes:
        st.subheader("Where each map points")
        shape = loaders.read_image(item).pixels.shape
        table = widgets.run_safely(
            lambda: check_boxes(item.record.finding_boxes, shape, item.name) or localization_table(pre, item, maps),
            "Scoring",
        )
        if table is not None:
            st.dataframe(table, hide_index=True, width="stretch")


@st.fragment
def attention_view(model_key: str, item: ImageItem, size: str, display: Display) -> None:
    """Where a clicked (or typed) position of the model input attends; a click reruns only this view."""
    model = loaders.model(model_key).model
    layers = list(model.attention_layers())
    if not layers:
        st.info(f"{loaders.choice(model_key).label} has no attention layers: attention maps need an HCT model.")
        return
    pre = loaders.preprocessed(item, size)
    height, width = pre.size
    clicked = widgets.clicked_point("attn-click")
    if clicked is not None:
        st.session_state["attn-row"], st.session_state["attn-col"] = (int(v) for v in point_in_model(pre, clicked))
    cols = st.columns(4)
    layer = cols[0].selectbox("Layer", layers, key="attn-layer")
    head = cols[1].selectbox("Head", ["mean", *range(model.config.heads)], key="attn-head")
    row = cols[2].number_input("Query row", 0, height - 1, height // 2, key="attn-row")
    col = cols[3].number_input("Query column", 0, width - 1, width // 2, key="attn-col")
    result = widgets.run_safely(
        lambda: compute.attention(model_key, item, size, (row, col), layer), "The attention map"
    )
    if result is None:
        return
    heat = result.upsampled if head == "mean" else upsample(result.heads[head], pre.size)
    what = f"attention of {layer} (head {head}) from model-input position ({row}, {col})"
    st.caption("Click a point on the image (or type its row and column in model-input pixels) to see where it attends.")
    draw(
        item,
        explained(item, pre, heat, what, display, query=result.query_input),
        display,
        made_by(model_key, item, size, what),
        key="attn-click",
        click_grid=20,
    )


def erf_view(model_key: str, item: ImageItem, size: str, display: Display) -> None:
    """The ERF of the centre output position for this image (acquired orientation), on request; an ERF
    of another image, model or size is never drawn."""
    inputs = (model_key, item.key, size)
    if st.button("Compute the ERF of this image"):
        widgets.run_safely(
            lambda: tasks.start(
                "attn-erf",
                lambda task: compute.erfs([model_key], [item], size, "all", task)[0],
                images=1,
                size=size,
                inputs=inputs,
            ),
            "The ERF",
        )
    task = tasks.task("attn-erf")
    if task is None or task.inputs != inputs:
        return
    result = widgets.follow("attn-erf", "The ERF")
    if result is None:
        return
    pre = loaders.preprocessed(item, size, "acquired")
    what = "sqrt |ERF| of the centre output position"
    draw(
        item,
        explained(item, pre, result.sqrt_map, what, display, query=result.input_centre),
        display,
        made_by(model_key, item, size, what),
        key="attn-erf-map",
    )
    left, right = st.columns(2)
    left.plotly_chart(erf_curves([result], "columns", band=None), key="attn-erf-cols")
    right.plotly_chart(erf_curves([result], "rows", band=None), key="attn-erf-rows")


def gmic_view(model_key: str, item: ImageItem, size: str, display: Display) -> None:
    """NYU GMIC's four panels on the image as acquired: benign and malignant probabilities (fusion, with
    global and local), both saliency maps, the patch map with the K crops outlined, and the crops with
    their attention weights."""
    widgets.run_safely(
        lambda: tasks.start(
            "attn-gmic",
            lambda task: compute.gmic(model_key, item, size, task),
            images=1,
            size=size,
            inputs=(model_key, item.key, size),
        ),
        "Reading with GMIC",
    )
    result = widgets.follow("attn-gmic", "Reading with GMIC")
    if result is None:
        return
    pre = loaders.preprocessed(item, size, loaders.input_mode(model_key))
    for column, index, name in zip(st.columns(2), (0, 1), ("Benign", "Malignant")):
        column.metric(
            f"{name} (fusion)",
            f"{result.y_fusion[index]:.1%}",
            help="GMIC's prediction: the fusion of its global and local branches.",
        )
        column.caption(f"global {result.y_global[index]:.1%} · local {result.y_local[index]:.1%}")
    for column, index, name in zip(st.columns(2), (0, 1), ("benign", "malignant")):
        with column:
            what = f"saliency map: {name}"
            shown = explained(item, pre, result.saliency_upsampled[index], what, display)
            draw(item, shown, display, made_by(model_key, item, size, what), key=f"attn-gmic-{name}", height=560)
            downloads(item, shown, display, f"GMIC {name} saliency", key=f"attn-gmic-{name}")
    outlines = [pre.to_original_box(box) for box in result.crop_boxes]
    what = f"patch map: the {len(outlines)} crops GMIC read"
    draw(
        item,
        explained(item, pre, None, what, display),
        display,
        made_by(model_key, item, size, what),
        key="attn-gmic-patches",
        height=560,
        outlines=outlines,
    )
    st.caption("The crops, at the model input's resolution, with the attention the local branch gave each:")
    for column, crop, weight, box in zip(st.columns(len(result.crops)), result.crops, result.attention, outlines):
        low, high = float(crop.min()), float(crop.max())
        column.image(
            (crop - low) / (high - low or 1.0),
            clamp=True,
            caption=f"α = {weight:.2f} · rows {box[0]}–{box[2]}, columns {box[1]}–{box[3]}",
        )


def exam_view(model_key: str, views: Sequence[ImageItem], size: str, method: str, layer: str, display: Display) -> None:
    """The four views hung R-CC, L-CC / R-MLO, L-MLO with ``method``'s map on each, each view's
    malignancy probability and each breast's score (the mean over its views); for NYU's GMIC, benign
    and malignant both."""
    widgets.run_safely(
        lambda: tasks.start(
            "attn-exam",
            lambda task: compute.exam(model_key, views, size, method, task, layer),
            images=len(views),
            size=size,
            inputs=(model_key, tuple(v.key for v in views), size, method, layer),
        ),
        "Reading the exam",
    )
    results = widgets.follow("attn-exam", "Reading the exam")
    if not results:
        return
    classes = ("malignant", "benign") if results[0][1] is not None else ("malignant",)
    for name in classes:
        index = 1 if name == "malignant" else 0
        probabilities = {
            (v.record.laterality, v.record.view): r.probability if reading is None else float(reading.y_fusion[index])
            for v, (r, reading) in zip(views, results)
        }
        scores = breast_scores(probabilities)
        for column, side, side_name in zip(st.columns(2), ("R", "L"), ("Right", "Left")):
            if side in scores:
                label = f"{side_name} breast: mean over its views" + (f" ({name})" if len(classes) > 1 else "")
                column.metric(
                    label,
                    f"{scores[side]:.1%}",
                    help=f"The breast-level score is the mean of the {name} probabilities of that "
                    "breast's views (CC and MLO).",
                )
    mode = loaders.input_mode(model_key)
    attributions = [result for result, _ in results]
    shown = [
        explained(item, loaders.preprocessed(item, size, mode), result.heatmap, method_name(result), display)
        for item, result in zip(views, attributions)
    ]
    for pair in (range(0, 2), range(2, 4)):
        for column, i in zip(st.columns(2), pair):
            item, (result, reading) = views[i], results[i]
            with column:
                label = view_name(item.record.laterality, item.record.view)
                benign = "" if reading is None else f"P(benign) {reading.y_fusion[0]:.1%} · "
                caption = made_by(
                    model_key,
                    item,
                    size,
                    f"{label} · {benign}P(malignant) {result.probability:.1%} · {method_name(result)}",
                )
                draw(item, shown[i], display, caption, key=f"attn-exam-{i}", height=520)
    pacs.results_section(model_key, views, size, attributions, shown, method_name(attributions[0]), display.opacity)
