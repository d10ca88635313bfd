"""Every route declares exactly one policy; the app refuses to start otherwise."""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from exporter.api import create_app
from exporter.auth.policies import current_patient, public, require_service, route_policy

from .conftest import settings_for

EXPECTED = {
    ("POST", "/internal/export"): "service:export",
    ("GET", "/patient/export"): "patient",
    ("POST", "/$validate"): "service:validate",
    ("GET", "/metadata"): "public",
    ("GET", "/StructureDefinition/{id}"): "public",
    ("GET", "/ValueSet/{id}"): "public",
    ("GET", "/CodeSystem/{id}"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/openapi.json"): "public",
}


def test_every_route_declares_exactly_one_policy():
    app = create_app(settings_for())
    found = {}
    for route in app.routes:
        assert isinstance(route, APIRoute), f"{route}: not an APIRoute (cannot declare a policy)"
        policy = route_policy(route)  # raises for none or several
        for method in route.methods:
            found[(method, route.path)] = policy.name
    assert found == EXPECTED


def test_route_policy_rejects_a_route_without_a_policy_and_one_with_two():
    app = FastAPI()

    @app.get("/nothing")
    def nothing():
        return {}

    @app.get("/two")
    def two(a=Depends(public), b=Depends(current_patient)):
        return {}

    @app.get("/one")
    def one(a=Depends(require_service("export"))):
        return {}

    by_path = {r.path: r for r in app.routes if isinstance(r, APIRoute)}
    with pytest.raises(ValueError, match="declares 0 policies"):
        route_policy(by_path["/nothing"])
    with pytest.raises(ValueError, match="declares 2 policies"):
        route_policy(by_path["/two"])
    assert route_policy(by_path["/one"]).name == "service:export"


def test_openapi_names_each_routes_policy_and_the_bearer_scheme(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["keycloak"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": spec["components"]["securitySchemes"]["keycloak"]["description"]}
    ops = {(m.upper(), p): op for p, item in spec["paths"].items() for m, op in item.items()}
    for (method, path), name in EXPECTED.items():
        if path == "/openapi.json":
            continue
        op = ops[(method, path)]
        assert op["x-policy"] == name
        assert ("security" in op) == (name != "public"), path
        if name != "public":
            assert "401" in op["responses"]
