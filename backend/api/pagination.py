"""Page-number pagination whose page is bounded: past PostgreSQL's bigint an OFFSET is a
database error (500), so an absurd page number is refused as bad input (422) instead."""
from ninja import Field, Schema
from ninja.pagination import PageNumberPagination as NinjaPageNumberPagination

MAX_PAGE = 1_000_000


class PageNumberPagination(NinjaPageNumberPagination):
    class Input(Schema):
        page: int = Field(1, ge=1, le=MAX_PAGE)
        page_size: int | None = Field(None, ge=1)
