"""HCT Explorer: the Streamlit entry point (``streamlit run app/Home.py``)."""

import streamlit as st

st.set_page_config(page_title="HCT Explorer", layout="wide")
st.title("HCT Explorer")
st.write("Effective receptive fields and explanations of high-resolution mammography models.")
