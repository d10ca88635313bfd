"""Deterministic ids (layer L2): uuid5 over resource type, mapping and source id, so the same
domain record always becomes the same resource id and fullUrl, and golden tests are exact."""

from __future__ import annotations

import uuid

DEFAULT_NAMESPACE = uuid.UUID("5f4b3c2a-9d8e-4f1a-b6c7-d8e9f0a1b2c3")


def resource_id(namespace: uuid.UUID, resource_type: str, mapping_id: str, source_id: str) -> str:
    return str(uuid.uuid5(namespace, f"{resource_type}|{mapping_id}|{source_id}"))


def urn(resource_uuid: str) -> str:
    return f"urn:uuid:{resource_uuid}"
