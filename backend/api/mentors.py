from datetime import UTC, datetime, time

from django.utils.dateparse import parse_date, parse_datetime
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from ninja_jwt.authentication import JWTAuth

from backend.api.pagination import PageNumberPagination
from backend.api.schemas import ErrorOut, InputText
from backend.errors import InvalidInput
from backend.services.availability import mentor_availability, mentor_schedule_get, mentor_schedule_set
from backend.services.mentors import mentor_get, mentor_list

router = Router(tags=["mentors"])


class MentorStatsOut(Schema):
    """Public stats. Earnings are the mentor's own business: /api/auth/me, and the admin."""

    total_sessions: int
    total_minutes: int
    updated_at: datetime | None


class MentorOut(Schema):
    id: int
    name: str
    headline: str
    bio: str
    expertise: list[str]
    hourly_rate: int
    currency: str
    stats: MentorStatsOut

    @staticmethod
    def resolve_expertise(mentor):
        return [e.slug for e in mentor.expertise.all()]

    @staticmethod
    def resolve_stats(mentor):
        return {
            "total_sessions": mentor.total_sessions,
            "total_minutes": mentor.total_minutes,
            "updated_at": mentor.stats_updated_at,
        }


class MentorFilters(Schema):
    expertise: InputText | None = None
    q: InputText | None = None


@router.get("", response={200: list[MentorOut], 422: ErrorOut}, auth=None)
@paginate(PageNumberPagination, page_size=20)
def list_mentors(request, filters: Query[MentorFilters]):
    """Active mentors: `expertise` filters by topic slug, `q` searches name and headline."""
    return mentor_list(expertise=filters.expertise, search=filters.q)


@router.get("/{mentor_id}", response={200: MentorOut, 404: ErrorOut, 422: ErrorOut}, auth=None)
def get_mentor(request, mentor_id: int):
    return mentor_get(mentor_id=mentor_id)


class IntervalOut(Schema):
    start: datetime
    end: datetime


class AvailabilityQuery(Schema):
    from_: InputText | None = Field(None, alias="from", description="ISO date or datetime; default now")
    to: InputText | None = Field(None, description="ISO date or datetime; default 14 days after from")


class WindowIn(Schema):
    weekday: int = Field(description="0 Monday ... 6 Sunday")
    start_time: time = Field(description="UTC, e.g. 09:00")
    end_time: time = Field(description="UTC, after start_time")


class WindowOut(WindowIn):
    pass


class ScheduleIn(Schema):
    windows: list[WindowIn]


def _instant(value: str | None, field: str) -> datetime | None:
    """An ISO date (midnight UTC) or datetime (UTC when it carries no offset)."""
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None and (day := parse_date(value)):
            parsed = datetime.combine(day, time.min)
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidInput(f"{field} must be an ISO 8601 date or datetime", field=field)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/{mentor_id}/availability", response={200: list[IntervalOut], 404: ErrorOut, 422: ErrorOut}, auth=None)
def get_availability(request, mentor_id: int, window: Query[AvailabilityQuery]):
    """Free intervals inside the booking window: the mentor's weekly schedule (or any time
    without one) minus booked sessions and slots held by someone paying."""
    intervals = mentor_availability(mentor_id=mentor_id, starts=_instant(window.from_, "from"),
                                    ends=_instant(window.to, "to"))
    return [{"start": start, "end": end} for start, end in intervals]


@router.put("/me/schedule", response={200: list[WindowOut], 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
            auth=JWTAuth())
def put_schedule(request, payload: ScheduleIn):
    """Replace the caller's weekly schedule (mentors only); an empty list makes every time bookable."""
    return mentor_schedule_set(user=request.auth, windows=[w.dict() for w in payload.windows])


@router.get("/{mentor_id}/schedule", response={200: list[WindowOut], 404: ErrorOut, 422: ErrorOut}, auth=None)
def get_schedule(request, mentor_id: int):
    """The mentor's weekly windows (UTC); empty: bookable at any time."""
    mentor_get(mentor_id=mentor_id)
    return mentor_schedule_get(mentor_id=mentor_id)
