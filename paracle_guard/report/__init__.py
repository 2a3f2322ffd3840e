"""Report models and one module per output format."""
