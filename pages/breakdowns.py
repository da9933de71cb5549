"""Breakdowns: the paper's evaluation of predictions — Table 3, AUC by finding type (Table A1), the
AUC difference of two models by finding-size threshold (Fig. A2a) and tertile (Fig. A2b), ROC curves;
and where each explanation points on the images with a finding.

Opens on the shipped checkpoints' predictions (checkpoints/predictions.csv), with no click."""

import pandas as pd
import streamlit as st

from hct.eval import negatives_note, read_predictions, validate_predictions
from hct.eval.figures import finding_type_figure, roc_figure, size_threshold_figure, tertile_figure
from hct.eval.predictions import without_identity
from hct.eval.shipped import SHIPPED_PREDICTIONS, checkpoint_cards, prediction_refs, stale_models
from hct.explain import LOCALIZATION_METHODS, localization_figure, summarise

from app import compute, state, tasks, widgets
from app.compute import Overview

SHIPPED, COMPUTE, UPLOAD, PATH = "Shipped checkpoints", "Compute for other images", "Upload CSV", "CSV path"
LOCALIZATION = "Where explanations point"
PAIR_DEFAULT = ("hct_performer_relu", "gmic")  # the paper's Fig. A2: HCT-RELU against GMIC


def gaps(table: pd.DataFrame, group: str, label: str = "{}") -> str:
    """The cells without an AUC (left out of the figures), grouped by why."""
    missing = table[table["auc"].isna()].drop_duplicates(group)
    return "".join(
        f" No AUC for {', '.join(label.format(str(k).replace('_', ' ')) for k in rows[group])}: {why}."
        for why, rows in missing.groupby("reason", sort=False)
    )


def localization_section() -> None:
    """The localization scores (``python -m hct localize``) of the selected set's malignant images with boxes."""
    items = [i for i in state.images() if i.data is None and i.record.label == 1 and i.record.finding_boxes]
    st.caption(
        f"Each method's map scored against the finding's box on the {len(items)} malignant images with boxes "
        "of the selected set (choose a phantom or manifest on the Images page): the share of the map's "
        "positive mass inside the finding, and whether its maximum lies within 15 px of it."
    )
    with st.form("localize"):
        models = widgets.model_picker("Models", multi=True, key="bd-loc-models", default=["init:hct_performer_relu"])
        methods = st.multiselect("Methods", LOCALIZATION_METHODS, default=["gradcam", "saliency", "attention"])
        size = widgets.size_picker(models, key="bd-loc-size")
        clicked = st.form_submit_button("Score the maps", type="primary")
    if clicked and not (items and models and methods):
        st.error("Choose models and methods, and a set with malignant images that have finding boxes.")
    elif clicked:
        widgets.run_safely(
            lambda: tasks.start(
                "bd-localization",
                lambda task: compute.localization(models, items, size, methods, task),
                images=len(items),
                size=size,
                models=len(models),
            ),
            "Scoring the maps",
        )
    rows = widgets.follow("bd-localization", "Scoring the maps")
    if rows is None:
        return
    summary = summarise(rows)
    st.dataframe(summary, hide_index=True, width="stretch")
    st.image(widgets.png_bytes(localization_figure(summary, compute.refs(models))))
    st.download_button("Scores per image (CSV)", rows.to_csv(index=False), "localization.csv", "text/csv")


def shipped_predictions() -> pd.DataFrame | None:
    """The shipped checkpoints' predictions, with what they are and a warning when the checkpoints changed since."""
    predictions = widgets.run_safely(compute.shipped_predictions, f"Reading {SHIPPED_PREDICTIONS.name}")
    if predictions is None:
        return None
    n = predictions["image_id"].nunique()
    st.caption(
        f"`checkpoints/{SHIPPED_PREDICTIONS.name}`: the shipped checkpoints on the phantom test split "
        f"({n} images, {int(predictions.drop_duplicates('image_id')['label'].sum())} malignant), "
        "written by `python -m hct predict` (README, Checkpoints)."
    )
    stale = widgets.run_safely(lambda: stale_models(predictions, checkpoint_cards()), "Checking the checkpoints")
    if stale:
        st.warning(
            f"`{SHIPPED_PREDICTIONS.name}` does not match the checkpoints: "
            + "; ".join(f"**{m}**: {why}" for m, why in stale.items())
            + ". Those models' numbers below are not of the shipped weights: rewrite the file "
            "(README, Checkpoints) or compute predictions for them here."
        )
    return predictions


def computed_predictions() -> pd.DataFrame | None:
    """Predictions of the chosen models on the selected set's labelled images, computed as a task."""
    items = [i for i in state.images() if i.data is None and i.record.label in (0, 1)]
    st.caption(f"On the {len(items)} labelled images of the selected set (choose a data set on the Images page).")
    with st.form("predict"):
        models = widgets.model_picker(
            "Models", multi=True, key="bd-models", default=["init:gmic", "init:hct_performer_relu"]
        )
        size = widgets.size_picker(models)
        clicked = st.form_submit_button("Compute predictions", type="primary")
    widgets.untrained_note(models)
    if clicked and not items:
        st.error("The selected image set has no labelled images on disk: choose a data set on the Images page.")
    elif clicked and not models:
        st.error("Choose at least one model.")
    elif clicked:
        widgets.run_safely(
            lambda: tasks.start(
                "bd-predictions",
                lambda task: pd.concat([compute.predictions(k, items, size, task) for k in models], ignore_index=True),
                images=len(items),
                size=size,
                models=len(models),
            ),
            "Predicting",
        )
    return widgets.follow("bd-predictions", "Predicting")


def uploaded_predictions() -> pd.DataFrame | None:
    """Predictions from one or more uploaded CSV files."""
    files = st.file_uploader("Predictions CSV (one or more)", type=["csv"], accept_multiple_files=True)
    if not files:
        return None
    return widgets.run_safely(
        lambda: pd.concat([validate_predictions(pd.read_csv(f), source=f.name) for f in files], ignore_index=True),
        "Reading the predictions",
    )


def predictions_at_path() -> pd.DataFrame | None:
    """Predictions from a CSV or Parquet file under the data roots."""
    path = widgets.path_input(
        "Predictions file (CSV or Parquet)", key="bd-predictions", placeholder="data/predictions.csv"
    )
    return widgets.run_safely(lambda: read_predictions(path), f"Reading {path}") if path else None


def evaluation_controls(predictions: pd.DataFrame) -> int:
    """The number of bootstrap resamples, and the predictions' download."""
    controls = st.columns([2, 1])
    n_boot = controls[0].select_slider(
        "Bootstrap resamples",
        [200, 1000, 2000, 10_000],
        value=1000,
        help="The paper uses 10,000; fewer is faster for a first look.",
    )
    controls[1].download_button(
        "Predictions (CSV)", without_identity(predictions).to_csv(index=False), "predictions.csv", "text/csv"
    )
    return n_boot


def table3_view(overview: Overview, shipped: bool) -> None:
    """Table 3: each model's parameters, patch AUC (from its card) and image AUC with 95% CIs."""
    st.subheader("Table 3")
    table = overview.table3.rename(
        columns={
            "model": "Model",
            "params_millions": "Params (M)",
            "patch": "Patch AUC [95% CI]",
            "image": "Image AUC [95% CI]",
        }
    )
    st.dataframe(
        table[["Model", "Params (M)", "Patch AUC [95% CI]", "Image AUC [95% CI]"]],
        hide_index=True,
        width="stretch",
        column_config={"Params (M)": st.column_config.NumberColumn(format="%.2f")},
    )
    st.caption(
        "AUC in percent, malignant against all non-malignant images, with its percentile-bootstrap 95% CI. "
        "Patch: the patch-stage model's test AUC recorded in the checkpoint's card (— where the card has none)."
        if shipped
        else "AUC in percent, malignant against all non-malignant images, with its percentile-bootstrap 95% CI."
    )


def finding_type_view(overview: Overview, colours: dict[str, str]) -> None:
    """AUC by finding type (Table A1) beside the ROC curves."""
    left, right = st.columns(2)
    left.plotly_chart(finding_type_figure(overview.finding_type, colours), key="bd-type")
    right.plotly_chart(roc_figure(overview.roc, overview.roc_auc, colours), key="bd-roc")
    st.caption(negatives_note(overview.finding_type) + gaps(overview.finding_type, "finding_type"))


def pair_picker(models: list[str]) -> tuple[str, str]:
    """The model and its reference (the paper's pair by default)."""
    pick = st.columns(2)
    model = pick[0].selectbox(
        "Model",
        models,
        key="bd-model",
        index=models.index(PAIR_DEFAULT[0]) if PAIR_DEFAULT[0] in models else len(models) - 1,
    )
    others = [m for m in models if m != model]
    reference = pick[1].selectbox(
        "Against (the reference)",
        others,
        key="bd-reference",
        index=others.index(PAIR_DEFAULT[1]) if PAIR_DEFAULT[1] in others else 0,
    )
    return model, reference


def size_view(predictions: pd.DataFrame, overview: Overview, n_boot: int, colours: dict[str, str]) -> None:
    """Fig. A2: the AUC difference of two models by finding-size threshold and tertile, and the tables."""
    st.subheader("Two models by finding size (Fig. A2)")
    models = list(dict.fromkeys(predictions["model"]))
    if len(models) < 2:
        st.info("Fig. A2 compares two models: add predictions of a second model.")
        return
    model, reference = pair_picker(models)
    pair = widgets.run_safely(
        lambda: compute.size_breakdowns(predictions, model, reference, n_boot), "The size breakdowns"
    )
    if pair is None:
        return
    sizes, tertiles = pair
    left, right = st.columns(2)
    left.plotly_chart(size_threshold_figure(sizes, colours), key="bd-size")
    right.plotly_chart(tertile_figure(tertiles, colours), key="bd-tertile")
    st.caption(
        negatives_note(sizes) + gaps(sizes, "threshold", "size < {}") + gaps(tertiles, "tertile", "the {} tertile")
    )
    with st.expander("Tables"):
        for name, frame in (
            ("By finding type", overview.finding_type),
            ("By size threshold", sizes),
            ("By size tertile", tertiles),
        ):
            st.markdown(f"**{name}**")
            st.dataframe(frame, hide_index=True, width="stretch")


def auc_section(predictions: pd.DataFrame, shipped: bool) -> None:
    """The evaluation of ``predictions``: Table 3, AUC by finding type and ROC, two models by finding size."""
    n_boot = evaluation_controls(predictions)
    overview = widgets.run_safely(lambda: compute.overview(predictions, n_boot, shipped), "The evaluation")
    if overview is None:
        return
    colours = {ref.label: ref.colour for ref in prediction_refs(predictions, checkpoint_cards())}
    table3_view(overview, shipped)
    finding_type_view(overview, colours)
    size_view(predictions, overview, n_boot, colours)


PREDICTIONS = {
    SHIPPED: shipped_predictions,
    COMPUTE: computed_predictions,
    UPLOAD: uploaded_predictions,
    PATH: predictions_at_path,
}  # where the predictions come from -> what reads them

st.title("Breakdowns")
if st.segmented_control("Show", ["AUC", LOCALIZATION], default="AUC", key="bd-view") == LOCALIZATION:
    localization_section()
else:
    source = st.radio("Predictions", list(PREDICTIONS), horizontal=True)
    predictions = PREDICTIONS[source]()
    if predictions is not None:
        auc_section(predictions, shipped=source == SHIPPED)
