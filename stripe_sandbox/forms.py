"""Decode Stripe's form encoding: `line_items[0][price_data][currency]=usd`,
`expand[]=x`, `metadata[k]=v` into nested dicts (indexed
keys become lists during validation, where the schema says so)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from .errors import StripeApiError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(text: str) -> dict:
    root: dict = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.match(key)
        if not match:
            raise StripeApiError(400, f"Invalid parameter name: {key}", code="parameter_invalid", param=key)
        path = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
        _assign(root, path, value, key)
    return root


def _assign(container: dict, path: list[str], value: str, full_key: str) -> None:
    for position, part in enumerate(path):
        if part == "":
            # `expand[]=a&expand[]=b`: append in order of appearance.
            part = str(len(container))
        last = position == len(path) - 1
        if last:
            if isinstance(container.get(part), dict):
                raise StripeApiError(400, f"Invalid value for {full_key}: mixes a value and an object",
                                     code="parameter_invalid", param=full_key)
            container[part] = value
            return
        child = container.setdefault(part, {})
        if not isinstance(child, dict):
            raise StripeApiError(400, f"Invalid value for {full_key}: mixes a value and an object",
                                 code="parameter_invalid", param=full_key)
        container = child


def indexed_dict_as_list(node: dict) -> list | None:
    """`{"0": a, "1": b}` -> `[a, b]`; None when the keys are not indices. Lists stay
    dicts until the parameter schema says a list is expected, so that digit keys of
    `metadata` survive."""
    if node and all(key.isdigit() for key in node):
        return [node[key] for key in sorted(node, key=int)]
    return None
