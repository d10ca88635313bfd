"""Our FHIR R4 profile validator (layer L2): StructureDefinition snapshots compiled once into
trees of rules, applied to plain JSON dicts. Entry point: `validator.Validator`.

Modules, one concern each: primitives, structure (JSON shape, unknown elements, null/empty),
cardinality, fixed_pattern, slicing, binding (+ exporter.terminology.valuesets), extensions,
invariants (native translations + the fhirpath door), references, bundle (document rules);
model and compiler build the rule trees; messages holds the message ids.
"""
