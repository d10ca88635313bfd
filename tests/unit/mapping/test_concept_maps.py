"""Code tables published as ConceptMaps: every entry present, and valid FHIR."""

from exporter.cli import main
from exporter.mapping.tables import to_concept_map


def test_every_table_becomes_a_valid_concept_map(exporter):
    for table in exporter.engine.ms.tables.values():
        cm = to_concept_map(table, "https://diga-exporter.example.org/fhir", "1.0.0")
        sources = {e["code"] for g in cm["group"] for e in g["element"]}
        assert sources == set(table.entries), table.id
        errors = [i.format() for i in exporter.validator.validate(cm) if i.is_error]
        assert errors == [], table.id


def test_concept_maps_command_writes_files(tmp_path, capsys):
    assert main(["concept-maps", "-o", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("ConceptMap-*.json"))) >= 10
