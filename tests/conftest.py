pytest_plugins = ["tests.support.keycloak", "tests.support.refvalidator", "tests.support.fhirxml", "tests.support.mappings"]
