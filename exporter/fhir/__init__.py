"""FHIR plumbing (layer L1): the local package cache, JSON formatting, and (later) the FHIRPath door."""
