"""Cross-field rules of the domain document (layer L1): what JSON Schema cannot say, as data.

The rules live beside the mappings (`mappings/rules.yaml`), are loaded and checked like them (every
problem names file:line:column) and compiled once into closures; `RuleSet.check(doc)` then runs them
over a schema-valid document and reports each broken rule as an `Issue` naming the rule's YAML line
and the record's JSON path — never a value (values are patient data).

    rules = load_rules(Path("mappings/rules.yaml"), "mappings/rules.yaml", schema=domain_schema)
    rules.issues                       # problems of the rule file itself
    rules.check(doc)                   # broken rules, severity error or warning
"""

from exporter.rules.ruleset import Rule, RuleSet, load_rules

__all__ = ["Rule", "RuleSet", "load_rules"]
