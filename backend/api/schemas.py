"""Schemas shared by several routers."""
from typing import Annotated

from ninja import Schema
from pydantic import AfterValidator


def _storable(value: str) -> str:
    # PostgreSQL text holds neither NUL nor a lone UTF-16 surrogate (JSON allows "\ud800"):
    # refuse them as bad input (422) instead of failing at the database (500).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)")
    return value


InputText = Annotated[str, AfterValidator(_storable)]
"""Every string a client sends us: one PostgreSQL can store."""


class FieldErrorOut(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    """The one error shape of the whole API."""

    detail: str
    code: str
    field: str | None = None
    errors: list[FieldErrorOut] | None = None
