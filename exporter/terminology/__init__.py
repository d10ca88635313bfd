"""Terminology helpers (layer L1): code tables, local ValueSet expansion, SNOMED CT / LOINC check digits.

Modules here import only the standard library and lower layers (`exporter.issues`).
"""
