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


def main(start: str = DEFAULT) -> None:
    """Register every page and run the one in the URL (`start` when the URL names none)."""
    st.set_page_config(page_title="Hand-ID Lab", layout="wide")
    pages = {
        spec.url_path: st.Page(module.render, title=spec.title, url_path=spec.url_path, icon=spec.icon,
                               default=spec.url_path == start)
        for spec, module in view_pages()
    }
    common.register_pages(pages)
    st.navigation(list(pages.values())).run()


if __name__ == "__main__":  # Streamlit runs the main script as __main__; tests call main(start=...)
    main()
