"""Models: one card per checkpoint, the random-init architectures, and loading or unloading them."""

import streamlit as st

from hct.errors import HCTError
from hct.models import display_name, model_config
from hct.models.card import read_card
from hct.train.figures import training_curves_figure

from app import loaders, widgets
from app.loaders import ModelChoice


def load_controls(key: str, loaded: dict[str, str]) -> None:
    """Unload the model ``key`` when it is on the device, load it otherwise."""
    if key in loaded:
        if st.button("Unload", key=f"unload-{key}"):
            loaders.unload_model(key)
            st.rerun()
    elif st.button(f"Load on {loaders.device().upper()}", key=f"load-{key}"):
        if widgets.run_safely(lambda: loaders.model(key), "Loading the model") is not None:
            st.rerun()


def attention_kind(architecture: str, overrides: dict) -> str:
    """The architecture's token mixer, as a reader names it."""
    mixer = model_config(architecture, **{k: v for k, v in overrides.items() if k != "mixer"}).mixer
    return {"conv": "none (CNN)", "deformable": "deformable conv"}.get(mixer, mixer.replace("_", "-"))


def checkpoint_card(item: ModelChoice, loaded: dict[str, str]) -> None:
    """One checkpoint's card: parameters, test AUC, stage, input, training, curves, and loading it."""
    with st.container(border=True):
        try:
            card = read_card(item.checkpoint)
        except HCTError as err:
            st.error(f"{item.label}: {err}")
            return
        st.subheader(item.label)
        m = card.metrics
        low, high = (m.get(k) if m.get(k) is not None else float("nan") for k in ("test_auc_low", "test_auc_high"))
        auc = f"{m['test_auc']:.3f} [{low:.3f}, {high:.3f}]" if m.get("test_auc") is not None else "not evaluated"
        cols = st.columns(4)
        cols[0].metric("Parameters", f"{card.parameters / 1e6:.2f} M")
        cols[1].metric("Test AUC [95% CI]", auc)
        cols[2].metric("Stage", card.stage or "—")
        cols[3].metric("Input", "x".join(map(str, card.input_size)) if card.input_size else "—")
        st.markdown(
            f"**Architecture** {display_name(card.architecture)} · "
            f"**attention** {attention_kind(card.architecture, card.overrides)} · "
            f"**training data** {card.training_data or '—'} · **code** `{card.code_version}`"
        )
        if card.training.get("warning"):
            st.warning(card.training["warning"])
        if card.training:
            st.caption(", ".join(f"{k}: {v}" for k, v in card.training.items() if not isinstance(v, dict)))
        figure = training_curves_figure(loaders.training_curve(item.checkpoint))
        if figure is not None:
            st.plotly_chart(figure, key=f"curve-{item.key}")
        load_controls(item.key, loaded)


def checkpoints_view(checkpoints: list[ModelChoice], loaded: dict[str, str]) -> None:
    """A card per checkpoint in ``checkpoints/``, or why there is none."""
    if not checkpoints:
        st.info(
            "No checkpoints in `checkpoints/` yet. Trained weights will ship there; until then the app uses "
            "the architectures below at random initialisation (and says so wherever they are used)."
        )
    for item in checkpoints:
        checkpoint_card(item, loaded)


def architectures_view(architectures: list[ModelChoice], loaded: dict[str, str]) -> None:
    """One row per architecture at random initialisation: its attention, whether it is loaded, and loading it."""
    st.subheader("Architectures at random initialisation")
    for item in architectures:
        cols = st.columns([3, 2, 2, 1])
        cols[0].markdown(f"**{item.label}**")
        cols[1].markdown(f"attention: {attention_kind(item.architecture, {})}")
        cols[2].markdown("on device" if item.key in loaded else "not loaded")
        with cols[3]:
            load_controls(item.key, loaded)


st.title("Models")
loaded = loaders.loaded_models()
choices = loaders.model_choices()
checkpoints_view([c for c in choices if c.trained], loaded)
architectures_view([c for c in choices if not c.trained], loaded)
