"""textkit: a small text and number toolkit with a few bugs, for `clude team demo`."""
