"""Streamlit dashboard: one module per page."""
