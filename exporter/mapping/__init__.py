"""The YAML mapping language (layer L1): source files with positions, models, code tables, registry."""
