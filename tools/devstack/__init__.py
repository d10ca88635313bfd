"""Launchers for the local development stack (Keycloak, reference validator), started from the project's own files."""
