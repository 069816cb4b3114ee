"""Networks, one module per family, each weight-compatible with its official checkpoint."""
