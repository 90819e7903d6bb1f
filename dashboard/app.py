"""Hand-ID Lab dashboard: `streamlit run dashboard/app.py` (bound to localhost by `make run`).

Navigation only; each page lives in its own module under dashboard/views/ and exposes
`render()`. The dashboard reads run folders through core and launches work through jobs; it
never trains in its own process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `streamlit run` puts only dashboard/ on the path

from dashboard import common  # noqa: E402
from dashboard.views import compare, cross_eval, embeddings, errors, new_run, run, runs  # noqa: E402

PAGES = [
    (new_run, "New run", "new_run", ":material/add_circle:"),
    (runs, "Runs", "runs", ":material/list:"),
    (run, "Run", "run", ":material/monitoring:"),
    (embeddings, "Embeddings", "embeddings", ":material/scatter_plot:"),
    (errors, "Errors", "errors", ":material/error:"),
    (compare, "Compare", "compare", ":material/compare:"),
    (cross_eval, "Cross evaluation", "cross_eval", ":material/grid_on:"),
]


def main(start: str = "new_run") -> None:
    """Register every page and run the one in the URL (`start` when the URL names none)."""
    st.set_page_config(page_title="Hand-ID Lab", layout="wide")
    pages = {
        path: st.Page(module.render, title=title, url_path=path, icon=icon, default=path == start)
        for module, title, path, icon in PAGES
    }
    common.register_pages(pages)
    st.navigation(list(pages.values())).run()


if __name__ == "__main__":  # Streamlit runs the main script as __main__; tests call main(start=...)
    main()
