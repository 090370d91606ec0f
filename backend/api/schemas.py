"""Schemas shared by several routers."""
from ninja import Schema


class FieldErrorOut(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    """The one error shape of the whole API."""

    detail: str
    code: str
    field: str | None = None
    errors: list[FieldErrorOut] | None = None
