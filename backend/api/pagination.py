"""List pagination: page numbers (what clients use today) and keyset cursors (any page costs
what page 1 costs).

A page number is bounded: past PostgreSQL's bigint an OFFSET is a database error (500), so an
absurd page number is refused as bad input (422) instead. Every answer carries `next_cursor`
(null on the last page); passing it back as `cursor` continues after the last item of that
page, whatever was inserted meanwhile, and `page` is then ignored. A cursor page leaves
`count` null: the total came with the first page, and counting a busy mentor's 50,000
sessions again on every page would cost more than the page itself.
"""
import base64
import binascii
import json
from datetime import date, datetime
from typing import Any

from django.db.models import F, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from ninja import Field, Schema
from ninja.pagination import PageNumberPagination as NinjaPageNumberPagination

from backend.errors import InvalidInput
from backend.services.text import text_is_storable

MAX_PAGE = 1_000_000
MAX_CURSOR_LENGTH = 512


class PageNumberPagination(NinjaPageNumberPagination):
    class Input(Schema):
        page: int = Field(1, ge=1, le=MAX_PAGE)
        page_size: int | None = Field(None, ge=1)
        cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH,
                                   description="`next_cursor` of the previous page: the page after it (keyset)")

    class Output(Schema):
        items: list[Any]
        count: int | None = Field(description="Items in the whole list; null on pages asked for by cursor")
        next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last")

    def paginate_queryset(self, queryset: QuerySet, pagination: Input, request, **params) -> dict:
        page_size = self._get_page_size(pagination.page_size)
        ordering = _ordering(queryset)
        if pagination.cursor:
            page = queryset.filter(_after(queryset, ordering, _cursor_decode(pagination.cursor, len(ordering))))
        else:
            offset = (pagination.page - 1) * page_size
            page = queryset[offset:]
        items = list(page[:page_size + 1])  # one more than asked: is there a next page?
        more, items = len(items) > page_size, items[:page_size]
        next_cursor = _cursor_encode([_value(items[-1], field) for field, _ in ordering]) if more else None
        count = None if pagination.cursor else self._items_count(queryset)
        return {"items": items, "count": count, "next_cursor": next_cursor}


def _ordering(queryset: QuerySet) -> list[tuple[str, bool]]:
    """(field, descending) of the queryset's ORDER BY, which must end with a unique field."""
    ordering = [(name.lstrip("-"), name.startswith("-")) for name in queryset.query.order_by]
    assert ordering and ordering[-1][0] in ("id", "pk"), "keyset pagination needs an ordering ending in the id"
    assert len({descending for _, descending in ordering}) == 1, "one direction for every column (a row comparison)"
    return ordering


def _after(queryset: QuerySet, ordering: list[tuple[str, bool]], values: list) -> Q:
    """Rows after `values` in `ordering`, as one row comparison, `(created_at, id) < (x, y)`,
    which PostgreSQL turns into an index range starting at the cursor."""
    model = queryset.model
    try:
        values = [model._meta.get_field(field).to_python(value) for (field, _), value in zip(ordering, values)]
    except Exception:  # ValidationError and friends: a cursor we did not write
        raise InvalidInput("cursor is not a cursor this list gave out", field="cursor")
    after = TupleLessThan if ordering[0][1] else TupleGreaterThan
    return Q(after(Tuple(*(F(field) for field, _ in ordering)), values))


def _value(item, field: str):
    value = getattr(item, field)
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _cursor_encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def _cursor_decode(cursor: str, length: int) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        values = None
    if not (isinstance(values, list) and len(values) == length and all(map(_cursor_value_storable, values))):
        raise InvalidInput("cursor is not a cursor this list gave out", field="cursor")
    return values


def _cursor_value_storable(value) -> bool:
    # What PostgreSQL can compare with without a database error: a bigint, or text without NUL
    # or lone surrogates (a crafted cursor must be a 422, not a 500).
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -2**63 <= value < 2**63
    return isinstance(value, str) and text_is_storable(value)
