from datetime import datetime
from typing import Literal

from ninja import Field, Router, Schema
from ninja.pagination import paginate
from ninja_jwt.authentication import JWTAuth

from backend.api.pagination import PageNumberPagination
from backend.api.schemas import ErrorOut, InputText
from backend.api.throttles import throttled
from backend.services.cancellations import session_cancel
from backend.services.reschedules import session_reschedule
from backend.services.sessions import session_get_for_user, session_list_for_user

router = Router(tags=["sessions"], auth=JWTAuth())


class SessionMentorOut(Schema):
    id: int
    name: str


class CancellationTierOut(Schema):
    min_hours_before: int
    refund_percent: int


class SessionOut(Schema):
    id: int
    mentor: SessionMentorOut
    mentee_id: int
    title: str
    description: str
    scheduled_at: datetime
    ends_at: datetime
    duration_minutes: int
    status: str
    payment_status: str
    stripe_payment_id: str | None
    amount: int
    currency: str
    refunded_amount: int
    reschedule_count: int = Field(description="Times the session was moved (its calendar invite's SEQUENCE)")
    cancellation_policy: list[CancellationTierOut] | None = Field(
        description="The mentee's refund by notice, fixed when the session was paid (null until then); "
                    "a mentor's cancellation always refunds in full")
    is_disputed: bool = Field(description="The payment is under dispute: it can't be cancelled or refunded meanwhile")
    cancelled_by: str = Field(description="mentee, mentor, admin, stripe (refunded in full there), system (payment "
                                          "not cleared at the start), or empty")
    cancel_reason: str = Field(description="The reason the canceller gave, shown to the other party")
    created_at: datetime


class RescheduleIn(Schema):
    scheduled_at: datetime = Field(description="The new start, ISO 8601 with an offset")
    duration_minutes: int | None = Field(None, description="Must be the session's own (a move keeps what was paid)")


class CancelIn(Schema):
    reason: InputText = Field("", max_length=500)


@router.get("", response={200: list[SessionOut], 401: ErrorOut, 422: ErrorOut})
@paginate(PageNumberPagination, page_size=20)
def list_sessions(request, role: Literal["mentee", "mentor"] = "mentee"):
    """The caller's sessions, newest first; `role=mentor` lists those they give."""
    return session_list_for_user(user=request.auth, role=role)


@router.get("/{session_id}", response={200: SessionOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def get_session(request, session_id: int):
    return session_get_for_user(user=request.auth, session_id=session_id)


@router.post("/{session_id}/cancel", response={200: SessionOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut,
                                              422: ErrorOut, 429: ErrorOut})
@throttled("session_cancel", rate_setting="CANCEL_RATE_LIMIT")
def cancel_session(request, session_id: int, payload: CancelIn):
    """Cancel and refund: a mentor always in full; a mentee by the session's cancellation policy (in
    full when the mentor moved it last), 409 `refund_window_closed` when the notice earns nothing.
    Past CANCEL_RATE_LIMIT per caller or address: 429 `rate_limited` with Retry-After."""
    return session_cancel(user=request.auth, session_id=session_id, reason=payload.reason)


@router.post("/{session_id}/reschedule", response={200: SessionOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut,
                                                  409: ErrorOut, 422: ErrorOut, 429: ErrorOut})
@throttled("session_reschedule", rate_setting="RESCHEDULE_RATE_LIMIT")
def reschedule_session(request, session_id: int, payload: RescheduleIn):
    """Move a scheduled, paid session to another free slot of its mentor; the payment carries over.

    Mentees up to RESCHEDULE_NOTICE_HOURS before the start and MAX_RESCHEDULES times (409
    `reschedule_window_closed`, `too_many_reschedules`); mentors always. 409 `slot_unavailable` or
    `outside_schedule` for a slot that can't be had; 422 naming `duration_minutes` for another
    duration, `scheduled_at` for a start outside the booking window. Past RESCHEDULE_RATE_LIMIT: 429."""
    return session_reschedule(user=request.auth, session_id=session_id, scheduled_at=payload.scheduled_at,
                              duration_minutes=payload.duration_minutes)
