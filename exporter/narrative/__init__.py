"""Narratives: the document's human-readable presentation, generated from the mapped FHIR resources
(layer L2). `Narrator.apply(bundle)` writes every resource's, section's and the Composition's `text`
from the mapping set's templates (mappings/templates/), after mapping and before validation, so the
text can never say something the coded data does not. render/ uses the same templates for HTML/PDF.
"""
