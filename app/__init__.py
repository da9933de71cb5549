"""HCT Explorer's Streamlit UI glue: cached loaders, session state, sidebar and widgets."""
