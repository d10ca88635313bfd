"""Our FHIR R4 profile validator (layer L2): StructureDefinition snapshots compiled once into
trees of rules, applied to plain JSON dicts. Entry point: `validator.Validator`.

Modules, one concern each: primitives, structure (JSON shape, unknown elements, null/empty),
cardinality, fixed_pattern, bounds (min/maxValue), slicing, binding and codes (+
exporter.terminology.valuesets), extensions, invariants (native translations + the fhirpath door),
references, bundle, urls (example URLs), questionnaire, xhtml. Every element-level check is a
`rules.Rule` defined once in its concern module and run by both the walk (validator) and the clean
path (fastpath); messages holds the one message table, policy the policy switches, context the
per-call state; model and compiler build the rule trees.
"""
