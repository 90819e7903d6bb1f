"""One module per dashboard page (not named pages/, which Streamlit would treat as its legacy multipage folder), each exposing render()."""
