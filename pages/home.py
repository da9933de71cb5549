"""Home: what HCT Explorer is, the models and data available, and where to go next."""

import pandas as pd
import streamlit as st

from app import loaders, state

INTRO = (
    "Explanations and **effective receptive fields** (ERF) of the high-resolution mammography models of "
    "*Deep is a Luxury We Don't Have*: GMIC, Def-GMIC and HCT (a ResNet-22 whose last two stages use "
    "linear self-attention). Compare how far each model looks (ERF explorer), see where one model "
    "looked on one mammogram (Attention), and break AUCs down by finding type and size (Breakdowns)."
)


def models_view() -> None:
    """The models offered, each with a checkpoint or at random initialisation."""
    st.subheader("Models")
    choices = loaders.model_choices()
    st.dataframe(
        pd.DataFrame(
            {
                "model": [c.label for c in choices],
                "weights": ["checkpoint" if c.trained else "random init" for c in choices],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    if not any(c.trained for c in choices):
        st.info(
            "No trained checkpoint ships yet: every model runs at random initialisation until one is "
            "added to `checkpoints/` (or trained on the Training page)."
        )


def images_view() -> None:
    """The session's selected images."""
    st.subheader("Images")
    items = state.images()
    st.dataframe(
        pd.DataFrame(
            {
                "image": [i.name for i in items],
                "laterality": [i.record.laterality for i in items],
                "view": [i.record.view for i in items],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(f"{len(items)} images selected (the built-in CBIS-DDSM samples until you pick others).")


def start_here() -> None:
    """Links to the pages, by what a visitor wants to do."""
    st.subheader("Start here")
    cols = st.columns(3)
    cols[0].page_link("../pages/erf_explorer.py", label="Compare ERFs of two models", icon=":material/blur_on:")
    cols[1].page_link("../pages/attention.py", label="Where did the model look?", icon=":material/visibility:")
    cols[2].page_link("../pages/images.py", label="Choose or upload mammograms", icon=":material/image:")
    cols[0].page_link("../pages/models.py", label="Model cards", icon=":material/neurology:")
    cols[1].page_link("../pages/breakdowns.py", label="AUC breakdowns", icon=":material/bar_chart:")
    cols[2].page_link("../pages/training.py", label="Train a model", icon=":material/model_training:")


st.title("HCT Explorer")
st.markdown(INTRO)
left, right = st.columns(2)
with left:
    models_view()
with right:
    images_view()
start_here()
