"""The sidebar every page shares: the compute device, the models held on it and its queue."""

from __future__ import annotations

import streamlit as st

from hct.runtime.devices import describe_device, resolve_device

from app import loaders, tasks


def render() -> st.delta_generator.DeltaGenerator:
    """The device note and, in the returned slot, the models on the device (see :func:`show_models`)."""
    with st.sidebar:
        name = describe_device(resolve_device("auto"))
        if loaders.device() == "cuda":
            st.success(f"Device: CUDA — {name}")
        else:
            st.warning(f"Device: {name}. No GPU found: keep the resolution and N small.")
        st.caption("Models on the device")
        slot = st.empty()
    show_models(slot)
    return slot


def show_models(slot: st.delta_generator.DeltaGenerator) -> None:
    """List the models held on the device and its queue in ``slot`` (filled again after the page ran,
    so a model the page loaded shows at once)."""
    loaded = loaders.loaded_models()
    labels = {c.key: c.label for c in loaders.model_choices()}
    queue = tasks.queue()
    with slot.container():
        if loaded:
            for key, where in loaded.items():
                st.markdown(f"- {labels.get(key, key)} · `{where}`")
        else:
            st.markdown("_none yet — they load on first use_")
        st.caption(f"Computing: {queue.running} of {queue.slots} at once, {queue.waiting} queued")
