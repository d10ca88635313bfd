"""The OpenAPI examples are real: the export example exports to a valid Bundle, the $validate
example is a valid resource, and the protected operations declare the bearer scheme."""

from exporter.api.routes import _EXPORT_EXAMPLE, _VALIDATE_EXAMPLE


def test_export_example_exports(exporter):
    result = exporter.export(_EXPORT_EXAMPLE, export_time="2026-04-06T10:00:00+02:00")
    assert result.ok, [i.format() for i in result.issues if i.is_error]


def test_validate_example_is_valid(exporter):
    assert [i for i in exporter.validator.validate(_VALIDATE_EXAMPLE) if i.is_error] == []


def test_schema_carries_examples_and_security(client):
    doc = client.get("/openapi.json").json()
    export = doc["paths"]["/internal/export"]["post"]
    assert export["requestBody"]["content"]["application/fhir+json"]["example"] == _EXPORT_EXAMPLE
    assert export["security"] == [{"keycloak": []}]
    assert doc["components"]["securitySchemes"]["keycloak"]["scheme"] == "bearer"
