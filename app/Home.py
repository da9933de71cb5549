"""HCT Explorer: the Streamlit entry point and router (``streamlit run app/Home.py`` from the repo root)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import sidebar, signon, widgets  # noqa: E402

PAGES = [
    st.Page("../pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("../pages/models.py", title="Models", icon=":material/neurology:"),
    st.Page("../pages/images.py", title="Images", icon=":material/image:"),
    st.Page("../pages/erf_explorer.py", title="ERF explorer", icon=":material/blur_on:"),
    st.Page("../pages/attention.py", title="Attention", icon=":material/visibility:"),
    st.Page("../pages/breakdowns.py", title="Breakdowns", icon=":material/bar_chart:"),
    st.Page("../pages/training.py", title="Training", icon=":material/model_training:"),
]

st.set_page_config(page_title="HCT Explorer", page_icon=":material/blur_on:", layout="wide")
signon.gate()  # with sign-on configured, nothing below runs for a visitor who has not signed in
page = st.navigation(PAGES)
models_slot = sidebar.render()
widgets.run_page(page)  # a failure is one line on the page, never a traceback
sidebar.show_models(models_slot)  # not reached when a page stops early; the slot then keeps the earlier list
