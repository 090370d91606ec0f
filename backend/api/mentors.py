from datetime import UTC, datetime, time
from typing import Literal

from django.utils.dateparse import parse_date, parse_datetime
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from ninja_jwt.authentication import JWTAuth

from backend.api.pagination import PageNumberPagination
from backend.api.schemas import ErrorOut, InputText
from backend.errors import InvalidInput
from backend.services.availability import mentor_availability, mentor_schedule_get, mentor_schedule_set
from backend.services.mentors import mentor_get, mentor_list
from backend.services.payout_accounts import payout_account_get, payout_account_onboarding_link
from backend.services.payouts import payouts_for_mentor

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
    return {"onboarding_url": payout_account_onboarding_link(user=request.auth)}


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
