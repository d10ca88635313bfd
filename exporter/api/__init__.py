"""The HTTP service (layer L4): `create_app(settings)` builds the FastAPI application.

Modules: app (factory, lifespan, request middleware), routes (thin routers, one policy each),
errors (the one exception handler, silent denials), bodies (JSON body limits), sources (where
patient documents come from), conformance (igs/ resources, CapabilityStatement), logs (JSON logs,
audit). May import every lower layer; nothing imports it but the CLI.
"""

from exporter.api.app import create_app

__all__ = ["create_app"]
