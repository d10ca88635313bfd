"""Cardinality (layer L2): min/max of each element, including 0..0 (prohibited) elements."""

from __future__ import annotations

from exporter.validation import messages as M
from exporter.validation.model import Node


def check(node: Node, count: int, where: str) -> tuple[str, str, str] | None:
    """(message id, message, expression) when `count` values violate the element's cardinality."""
    if count < node.min:
        return (M.CARD_MIN, f"{node.path}: minimum required = {node.min}, but only found {count}", where)
    if node.max is not None and count > node.max:
        if node.max == 0:
            return (M.CARD_MAX, f"{node.path} is prohibited (max 0) in this profile, but found {count}", where)
        return (M.CARD_MAX, f"{node.path}: maximum allowed = {node.max}, but found {count}", where)
    return None
