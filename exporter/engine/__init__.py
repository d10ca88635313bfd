"""The mapping engine (layer L2): compiled value specs, resource building, document assembly."""
