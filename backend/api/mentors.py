from datetime import UTC, date, datetime, time

from django.utils.dateparse import parse_date, parse_datetime
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from ninja_jwt.authentication import JWTAuth

from backend.api.pagination import PageNumberPagination
from backend.api.schemas import ErrorOut, InputText
from backend.errors import InvalidInput
from backend.services.availability import mentor_availability, mentor_schedule_get, mentor_schedule_set
from backend.services.booking_slots import mentor_bookable_starts
from backend.services.mentors import mentor_get, mentor_list
from backend.services.money import money_format

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


class SlotsQuery(Schema):
    duration_minutes: int = Field(60, description="The session's length; one of BOOKING_ALLOWED_DURATIONS")
    days: int = Field(14, description="How many days ahead, from now (at most 62)")
    time_zone: InputText = Field("UTC", description="IANA zone the days and the grid are in, e.g. America/New_York")


class PriceOut(Schema):
    amount: int = Field(description="Minor units")
    currency: str
    text: str = Field(description="As people read it, e.g. 120.00 USD")


class SlotDayOut(Schema):
    day: date = Field(description="The day in `time_zone`")
    starts: list[datetime] = Field(description="Bookable start times that day, ISO 8601 with the zone's offset")


class SlotsOut(Schema):
    mentor_id: int
    time_zone: str
    duration_minutes: int
    grid_minutes: int = Field(description="Starts are this many minutes apart on the viewer's clock")
    price: PriceOut
    days: list[SlotDayOut]


@router.get("/{mentor_id}/slots", response={200: SlotsOut, 404: ErrorOut, 422: ErrorOut}, auth=None)
def get_slots(request, mentor_id: int, query: Query[SlotsQuery]):
    """When a session of `duration_minutes` can start, day by day in `time_zone`, with its price:
    the booking page's slot picker. Computed from the same free intervals as /availability."""
    picker = mentor_bookable_starts(mentor_id=mentor_id, duration_minutes=query.duration_minutes, days=query.days,
                                    time_zone=query.time_zone)
    return {
        "mentor_id": picker.mentor_id, "time_zone": picker.time_zone, "duration_minutes": picker.duration_minutes,
        "grid_minutes": picker.grid_minutes,
        "price": {"amount": picker.amount, "currency": picker.currency,
                  "text": money_format(picker.amount, picker.currency)},
        "days": [{"day": day, "starts": starts} for day, starts in picker.days],
    }


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
