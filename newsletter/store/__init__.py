"""The store: the only place that writes SQL."""
