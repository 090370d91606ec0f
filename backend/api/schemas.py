"""Schemas shared by several routers."""
from typing import Annotated

from ninja import Schema
from pydantic import AfterValidator

from backend.services.text import text_storable_check

InputText = Annotated[str, AfterValidator(text_storable_check)]
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
