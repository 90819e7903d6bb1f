"""Hand-ID Lab core library: data, models, losses, metrics, training (no UI)."""
