from datetime import datetime

from ninja import Field, Router, Schema
from ninja_jwt.authentication import JWTAuth

from backend.api.schemas import ErrorOut, InputText
from backend.api.throttles import client_address, email_link_throttle, throttled
from backend.models import User, field_max_length
from backend.services.auth import auth_login, auth_logout, auth_refresh, user_register, user_update
from backend.services.email_verification import email_verification_send
from backend.services.payouts import mentor_payout_summary

router = Router(tags=["auth"])


class RegisterIn(Schema):
    # The lengths of User.email and User.name: longer would be a database error, not a 422.
    email: InputText = Field(max_length=field_max_length(User, "email"))
    password: InputText = Field(max_length=User.PASSWORD_MAX_LENGTH)
    name: InputText = Field(max_length=field_max_length(User, "name"))
    time_zone: InputText | None = Field(None, max_length=field_max_length(User, "time_zone"),
                                        description="IANA name, e.g. Europe/Berlin; default UTC")


class MeIn(Schema):
    """The caller's own settings; a field left out stays as it is."""

    name: InputText | None = Field(None, min_length=1, max_length=field_max_length(User, "name"))
    time_zone: InputText | None = Field(None, max_length=field_max_length(User, "time_zone"),
                                        description="IANA name, e.g. America/New_York: pages, emails and invites "
                                                    "show times in it")


class LoginIn(Schema):
    email: InputText
    password: InputText


class RefreshIn(Schema):
    refresh: InputText


class TokenPairOut(Schema):
    access: str
    refresh: str


class OwnMentorStatsOut(Schema):
    """A mentor's own stats, earnings included (net of refunds, minor units of `currency`), and
    their payouts split: earned = paid_out + waiting - debt."""

    total_sessions: int
    total_minutes: int
    total_earnings: int
    currency: str
    updated_at: datetime | None = Field(alias="stats_updated_at")
    earned: int = Field(description="The mentor's share (after the platform fee and refunds) of every session that "
                                    "counts, paid out or not")
    paid_out: int = Field(description="Transferred to the mentor's Stripe account, less what was reversed")
    waiting: int = Field(description="Owed, not transferred yet (scheduled, waiting for the account, or held)")
    reversed: int = Field(description="Taken back by transfer reversals after refunds or lost disputes")
    debt: int = Field(description="Reversals Stripe refused (the balance was short), netted off the next payouts")


class EmailVerificationOut(Schema):
    sent: bool = Field(description="false when the address is verified already")


class UserOut(Schema):
    id: int
    email: str
    name: str
    email_verified: bool = Field(False, description="Whether the owner followed the link mailed to this address")
    time_zone: str = Field(description="IANA name: where this person reads times")
    mentor_id: int | None
    mentor_stats: OwnMentorStatsOut | None = Field(None, description="Only for a mentor, only to themselves")

    @staticmethod
    def resolve_email_verified(user):
        return user.email_verified_at is not None

    @staticmethod
    def resolve_mentor_id(user):
        mentor = getattr(user, "mentor", None)
        return mentor.pk if mentor else None

    @staticmethod
    def resolve_mentor_stats(user):
        mentor = getattr(user, "mentor", None)
        if mentor is None:
            return None
        stats = {name: getattr(mentor, name) for name in ("total_sessions", "total_minutes", "total_earnings",
                                                          "currency", "stats_updated_at")}
        return stats | mentor_payout_summary(mentor=mentor)


@router.post("/register", response={201: UserOut, 400: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut})
@throttled("auth_register", rate_setting="REGISTER_RATE_LIMIT")
def register(request, payload: RegisterIn):
    """Too many registrations from one address (REGISTER_RATE_LIMIT): 429 `rate_limited` with Retry-After."""
    return 201, user_register(email=payload.email, password=payload.password, name=payload.name,
                              time_zone=payload.time_zone, site_url=request.build_absolute_uri("/"))


@router.post("/login", response={200: TokenPairOut, 400: ErrorOut, 401: ErrorOut, 422: ErrorOut, 429: ErrorOut})
def login(request, payload: LoginIn):
    """Too many failed attempts for one account or from one address (LOGIN_RATE_LIMIT): 429 `rate_limited`."""
    return auth_login(email=payload.email, password=payload.password, client_address=client_address(request))


@router.post("/refresh", response={200: TokenPairOut, 400: ErrorOut, 401: ErrorOut, 422: ErrorOut})
def refresh(request, payload: RefreshIn):
    """A new `access` token and a new `refresh` token; the refresh token sent is revoked (use the new one)."""
    return auth_refresh(refresh=payload.refresh)


@router.post("/logout", response={204: None, 400: ErrorOut, 401: ErrorOut, 422: ErrorOut})
def logout(request, payload: RefreshIn):
    """Revoke the refresh token sent (204, also when it already was); its access tokens expire
    within JWT_ACCESS_MINUTES."""
    auth_logout(refresh=payload.refresh)
    return 204, None


@router.get("/me", response={200: UserOut, 401: ErrorOut}, auth=JWTAuth())
def me(request):
    return request.auth


@router.post("/verify-email", response={202: EmailVerificationOut, 401: ErrorOut, 429: ErrorOut, 503: ErrorOut},
             auth=JWTAuth())
def verify_email(request):
    """Mail the caller the link that verifies their address (needed before a first booking when
    REQUIRE_EMAIL_VERIFICATION is on). Past EMAIL_LINK_RATE_LIMIT: 429."""
    email_link_throttle(request, recipient=request.auth.email)
    return 202, {"sent": email_verification_send(user=request.auth, site_url=request.build_absolute_uri("/"))}


@router.patch("/me", response={200: UserOut, 400: ErrorOut, 401: ErrorOut, 422: ErrorOut}, auth=JWTAuth())
def update_me(request, payload: MeIn):
    """Change one's own name or time zone (IANA name; anything else is 422 naming `time_zone`)."""
    return user_update(user=request.auth, name=payload.name, time_zone=payload.time_zone)
