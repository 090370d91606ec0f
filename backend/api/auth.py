from datetime import datetime

from ninja import Field, Router, Schema
from ninja_jwt.authentication import JWTAuth

from backend.api.schemas import ErrorOut, InputText
from backend.api.throttles import client_address, throttled
from backend.models import User, field_max_length
from backend.services.auth import auth_login, auth_refresh, user_register

router = Router(tags=["auth"])


class RegisterIn(Schema):
    # The lengths of User.email and User.name: longer would be a database error, not a 422.
    email: InputText = Field(max_length=field_max_length(User, "email"))
    password: InputText = Field(max_length=User.PASSWORD_MAX_LENGTH)
    name: InputText = Field(max_length=field_max_length(User, "name"))


class LoginIn(Schema):
    email: InputText
    password: InputText


class RefreshIn(Schema):
    refresh: InputText


class TokenPairOut(Schema):
    access: str
    refresh: str


class AccessOut(Schema):
    access: str


class OwnMentorStatsOut(Schema):
    """A mentor's own stats, earnings included (net of refunds, minor units of `currency`)."""

    total_sessions: int
    total_minutes: int
    total_earnings: int
    currency: str
    updated_at: datetime | None = Field(alias="stats_updated_at")


class UserOut(Schema):
    id: int
    email: str
    name: str
    mentor_id: int | None
    mentor_stats: OwnMentorStatsOut | None = Field(None, description="Only for a mentor, only to themselves")

    @staticmethod
    def resolve_mentor_id(user):
        mentor = getattr(user, "mentor", None)
        return mentor.pk if mentor else None

    @staticmethod
    def resolve_mentor_stats(user):
        return getattr(user, "mentor", None)


@router.post("/register", response={201: UserOut, 400: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut})
@throttled("auth_register", rate_setting="REGISTER_RATE_LIMIT")
def register(request, payload: RegisterIn):
    """Too many registrations from one address (REGISTER_RATE_LIMIT): 429 `rate_limited` with Retry-After."""
    return 201, user_register(email=payload.email, password=payload.password, name=payload.name)


@router.post("/login", response={200: TokenPairOut, 400: ErrorOut, 401: ErrorOut, 422: ErrorOut, 429: ErrorOut})
def login(request, payload: LoginIn):
    """Too many failed attempts for one account or from one address (LOGIN_RATE_LIMIT): 429 `rate_limited`."""
    return auth_login(email=payload.email, password=payload.password, client_address=client_address(request))


@router.post("/refresh", response={200: AccessOut, 400: ErrorOut, 401: ErrorOut, 422: ErrorOut})
def refresh(request, payload: RefreshIn):
    return {"access": auth_refresh(refresh=payload.refresh)}


@router.get("/me", response={200: UserOut, 401: ErrorOut}, auth=JWTAuth())
def me(request):
    return request.auth
