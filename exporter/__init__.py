"""DiGA FHIR exporter: turns a DiGA backend's domain JSON into validated FHIR R4 document Bundles.

Layers (a lower layer never imports a higher one; tests/unit/test_layers.py keeps this true):
L0 issues, settings · L1 fhir/ · L2 igbuild · L4 cli.
"""

__version__ = "0.1.0"
