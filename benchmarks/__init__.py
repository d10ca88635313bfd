"""Reproducible speed checks; each reports ratios against floors measured in the same run."""
