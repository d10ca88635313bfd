"""`python -m exporter` runs the developer CLI (same as the `fhir-export` console script)."""

from exporter.cli import main

raise SystemExit(main())
