"""Identity losses: the weighted combination and center loss."""
