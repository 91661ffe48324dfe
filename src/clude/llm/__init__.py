"""Chat models: interface, providers, message normalization (issue 3)."""
