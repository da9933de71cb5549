"""The sidebar every page shares: the compute device and the models held on it."""

from __future__ import annotations

import streamlit as st

from hct.devices import describe_device, resolve_device

from app import loaders


def render() -> None:
    with st.sidebar:
        name = describe_device(resolve_device("auto"))
        if loaders.device() == "cuda":
            st.success(f"Device: CUDA — {name}")
        else:
            st.warning(f"Device: {name}. No GPU found: keep the resolution and N small.")
        loaded = loaders.loaded_models()
        labels = {c.key: c.label for c in loaders.model_choices()}
        st.caption("Models on the device")
        if loaded:
            for key, where in loaded.items():
                st.markdown(f"- {labels.get(key, key)} · `{where}`")
        else:
            st.markdown("_none yet — they load on first use_")
