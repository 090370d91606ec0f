from datetime import datetime
from typing import Literal

from ninja import Field, Router, Schema
from ninja.pagination import paginate
from ninja_jwt.authentication import JWTAuth

from backend.api.pagination import PageNumberPagination
from backend.api.schemas import ErrorOut, InputText
from backend.api.throttles import throttled
from backend.services.cancellations import session_cancel
from backend.services.sessions import session_get_for_user, session_list_for_user

router = Router(tags=["sessions"], auth=JWTAuth())


class SessionMentorOut(Schema):
    id: int
    name: str


class SessionOut(Schema):
    id: int
    mentor: SessionMentorOut
    mentee_id: int
    title: str
    description: str
    scheduled_at: datetime
    duration_minutes: int
    status: str
    payment_status: str
    stripe_payment_id: str | None
    amount: int
    currency: str
    refunded_amount: int
    created_at: datetime


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
    """Cancel with a full refund: mentees up to REFUND_CUTOFF_HOURS before the start, mentors always.
    Past CANCEL_RATE_LIMIT per caller or address: 429 `rate_limited` with Retry-After."""
    return session_cancel(user=request.auth, session_id=session_id, reason=payload.reason)
