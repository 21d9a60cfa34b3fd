"""HTTP handlers, one module per family: health, ops, analysis, debug."""
