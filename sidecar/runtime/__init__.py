"""The shells that run: listeners, metrics, logs, workers and reload."""
