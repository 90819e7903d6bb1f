"""Hand-ID Lab dashboard: `streamlit run dashboard/app.py` (bound to localhost by `make run`).

Navigation only; each page is a module under dashboard/views/ that declares `PAGE` and
`render()` (found by dashboard.views.pages). The dashboard reads run folders through core and
launches work through jobs; it never trains in its own process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `streamlit run` puts only dashboard/ on the path

from dashboard import common  # noqa: E402
from dashboard.views import pages as view_pages  # noqa: E402

DEFAULT = "new_run"
HOME = "home"  # the root URL's page: hidden, it shows the start page, which keeps its own URL too


def main(start: str = DEFAULT) -> None:
    """Register every page and run the one in the URL (`start` at the root URL)."""
    st.set_page_config(page_title="Hand-ID Lab", layout="wide")
    found = view_pages()
    pages = {spec.url_path: st.Page(module.render, title=spec.title, url_path=spec.url_path, icon=spec.icon)
             for spec, module in found}
    spec, module = next((spec, module) for spec, module in found if spec.url_path == start)
    home = st.Page(module.render, title=spec.title, url_path=HOME, icon=spec.icon, default=True, visibility="hidden")
    common.register_pages(pages)
    st.navigation([home, *pages.values()]).run()


if __name__ == "__main__":  # Streamlit runs the main script as __main__; tests call main(start=...)
    main()
