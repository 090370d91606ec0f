from datetime import UTC, date, datetime, time
from typing import Literal

from django.utils.dateparse import parse_date, parse_datetime
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from ninja_jwt.authentication import JWTAuth

from backend.api.pagination import PageNumberPagination
from backend.api.schemas import ErrorOut, InputText
from backend.api.sessions import SessionOut
from backend.errors import InvalidInput
from backend.models import Mentor, field_max_length
from backend.services.availability import (
    mentor_availability,
    mentor_schedule_get,
    mentor_schedule_own,
    mentor_schedule_set,
)
from backend.services.booking_slots import mentor_bookable_starts
from backend.services.mentors import mentor_bookings, mentor_get, mentor_list, mentor_own, mentor_profile_update
from backend.services.money import money_format
from backend.services.payout_accounts import payout_account_get, payout_account_onboarding_link
from backend.services.payouts import payouts_for_mentor
from backend.services.site import request_site_url

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


class IntervalOut(Schema):
    start: datetime
    end: datetime


class AvailabilityQuery(Schema):
    from_: InputText | None = Field(None, alias="from", description="ISO date or datetime; default now")
    to: InputText | None = Field(None, description="ISO date or datetime; default 14 days after from")


class WindowIn(Schema):
    weekday: int = Field(description="0 Monday ... 6 Sunday, of the window's start in the schedule's time zone")
    start_time: time = Field(description="Local wall-clock time in the schedule's time zone, e.g. 09:00")
    end_time: time = Field(description="Local; at or before start_time: the window ends the next day (22:00-02:00)")


class WindowOut(WindowIn):
    time_zone: str = Field(description="IANA zone the window's times are in (UTC for schedules set before zones)")

    @staticmethod
    def resolve_time_zone(window):
        return window.mentor.schedule_time_zone


class ScheduleIn(Schema):
    windows: list[WindowIn]
    time_zone: InputText | None = Field(None, max_length=64, description=(
        "IANA zone of the windows and blocked dates; default: the schedule's own zone, or the mentor's time zone "
        "for a first schedule"))
    blocked_dates: list[date] | None = Field(None, description="Whole local days not bookable; left out: unchanged")


class ScheduleOut(Schema):
    """A mentor's schedule as stored: local wall-clock windows in `time_zone`, and blocked dates."""

    time_zone: str
    windows: list[WindowIn]
    blocked_dates: list[date]


class MentorProfileIn(Schema):
    """A mentor's own profile; a field left out stays as it is. The price of a session is still
    computed on the server from `hourly_rate`."""

    name: InputText | None = Field(None, min_length=1, max_length=field_max_length(Mentor, "name"))
    headline: InputText | None = Field(None, max_length=field_max_length(Mentor, "headline"))
    bio: InputText | None = Field(None, max_length=5000)
    hourly_rate: int | None = Field(None, gt=0, le=10_000_000, description="Minor units (cents) per hour")
    currency: InputText | None = Field(None, min_length=3, max_length=3, description="ISO 4217, e.g. usd")


class BookingMenteeOut(Schema):
    id: int
    name: str


class MentorBookingOut(SessionOut):
    """A session as its mentor sees it in their bookings: with who booked it."""

    mentee: BookingMenteeOut


class BookingsQuery(Schema):
    when: Literal["upcoming", "past"] = Field("upcoming", description=(
        "upcoming: not ended yet, soonest first; past: ended, latest first"))


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


# The caller's own routes first: /me must not be read as a mentor id.
@router.put("/me/schedule", response={200: list[WindowOut], 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
            auth=JWTAuth())
def put_schedule(request, payload: ScheduleIn):
    """Replace the caller's weekly schedule (mentors only); an empty list makes every time bookable.
    Windows are local times in `time_zone`; `blocked_dates`, when given, replaces the blocked days.
    Booked sessions are never removed by a change."""
    schedule = mentor_schedule_set(user=request.auth, windows=[w.dict() for w in payload.windows],
                                   time_zone=payload.time_zone, blocked_dates=payload.blocked_dates)
    return mentor_schedule_get(mentor_id=schedule.mentor_id)


@router.get("/me/schedule", response={200: ScheduleOut, 401: ErrorOut, 403: ErrorOut}, auth=JWTAuth())
def get_own_schedule(request):
    """The caller's schedule as stored (mentors only): windows in local time, with their zone, and blocked dates."""
    return mentor_schedule_own(user=request.auth)


@router.get("/me/bookings", response={200: list[MentorBookingOut], 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
            auth=JWTAuth())
@paginate(PageNumberPagination, page_size=20)
def list_own_bookings(request, filters: Query[BookingsQuery]):
    """The caller's sessions as mentor (mentors only), by start: upcoming soonest first, or past latest first."""
    return mentor_bookings(user=request.auth, when=filters.when)


@router.get("/me", response={200: MentorOut, 401: ErrorOut, 403: ErrorOut}, auth=JWTAuth())
def get_own_profile(request):
    """The caller's mentor profile (mentors only), inactive or not."""
    return mentor_own(user=request.auth)


@router.patch("/me", response={200: MentorOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
              auth=JWTAuth())
def update_own_profile(request, payload: MentorProfileIn):
    """Change one's name, headline, bio, hourly rate or currency (mentors only). Booked sessions keep their price."""
    return mentor_profile_update(user=request.auth, **payload.dict(exclude_unset=True))


@router.get("/{mentor_id}", response={200: MentorOut, 404: ErrorOut, 422: ErrorOut}, auth=None)
def get_mentor(request, mentor_id: int):
    return mentor_get(mentor_id=mentor_id)


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


class OnboardingOut(Schema):
    onboarding_url: str = Field(description="Stripe's hosted onboarding for the caller's payout account (single use, "
                                            "expires in minutes)")


class BankPayoutFailureOut(Schema):
    code: str
    message: str
    failed_at: datetime


class PayoutAccountOut(Schema):
    status: Literal["none", "pending", "enabled", "restricted"] = Field(
        description="none before the first POST; pending until Stripe enables payouts; restricted when Stripe "
                    "disabled the account (or the mentor disconnected it)")
    charges_enabled: bool
    payouts_enabled: bool
    requirements_due: list[str] = Field(description="What Stripe still needs (requirements.currently_due)")
    disabled_reason: str | None = None
    stripe_account_id: str | None = None
    bank_payout_failure: BankPayoutFailureOut | None = Field(
        None, description="The last payout of the Stripe balance to the mentor's bank that failed, until one succeeds")


class PayoutOut(Schema):
    session_id: int
    session_title: str
    amount: int = Field(description="Minor units: the transfer (its estimate until it is sent)")
    currency: str
    status: Literal["scheduled", "waiting", "held", "paid", "partially_reversed", "reversed", "failed", "cancelled"]
    amount_reversed: int
    transfer_id: str | None
    payable_at: datetime | None
    paid_at: datetime | None

    @staticmethod
    def resolve_session_title(payout):
        return payout.session.title

    @staticmethod
    def resolve_transfer_id(payout):
        return payout.stripe_transfer_id


@router.post("/me/payout-account", response={200: OnboardingOut, 401: ErrorOut, 403: ErrorOut, 409: ErrorOut,
                                             502: ErrorOut, 503: ErrorOut}, auth=JWTAuth())
def create_payout_account_link(request):
    """Mentors only: a link to Stripe's onboarding for the caller's payout account, created on the
    first call; later calls give a fresh link for the same account."""
    return {"onboarding_url": payout_account_onboarding_link(user=request.auth, site_url=request_site_url(request))}


@router.get("/me/payout-account", response={200: PayoutAccountOut, 401: ErrorOut, 403: ErrorOut}, auth=JWTAuth())
def get_payout_account(request):
    """Mentors only: the payout account's state as Stripe last told us."""
    return payout_account_get(user=request.auth)


@router.get("/me/payouts", response={200: list[PayoutOut], 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
            auth=JWTAuth())
@paginate(PageNumberPagination, page_size=20)
def list_payouts(request):
    """Mentors only: one payout per paid session, newest first (`page`/`page_size` or `cursor`)."""
    return payouts_for_mentor(user=request.auth)


@router.get("/{mentor_id}/schedule", response={200: list[WindowOut], 404: ErrorOut, 422: ErrorOut}, auth=None)
def get_schedule(request, mentor_id: int):
    """The mentor's weekly windows as stored: local times in each window's `time_zone`; empty: bookable at any time."""
    mentor_get(mentor_id=mentor_id)
    return mentor_schedule_get(mentor_id=mentor_id)
