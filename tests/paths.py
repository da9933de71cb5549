"""Where the tests find the repository, its fixtures and the app, wherever a test module sits."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
HOME = str(REPO / "app" / "Home.py")  # the app's entry point, as AppTest and `streamlit run` take it
