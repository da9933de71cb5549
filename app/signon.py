"""Optional sign-on: Streamlit's ``st.login`` with an OpenID Connect provider of the hospital.

It is on when ``.streamlit/secrets.toml`` has an ``[auth]`` section (``redirect_uri``,
``cookie_secret``, ``client_id``, ``client_secret``, ``server_metadata_url``; README, "Running it for a
team"); Streamlit then reports a visitor who has not signed in as ``st.user.is_logged_in == False``.
"""

from __future__ import annotations

import streamlit as st


def gate() -> None:
    """A visitor who has not signed in sees the sign-in button only: no page, no sidebar, no data.
    A signed-in user sees who they are and a sign-out button in the sidebar."""
    if st.user.get("is_logged_in") is False:
        st.title("HCT Explorer")
        st.info("This server is for its team only: sign in with your hospital account to continue.")
        st.button("Sign in", type="primary", on_click=st.login)
        st.stop()
    if st.user.get("is_logged_in"):
        with st.sidebar:
            st.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or 'you'}")
            st.button("Sign out", on_click=st.logout)
