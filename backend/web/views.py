"""The pages: thin like the API's routers; the rules live in services."""
import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from backend.errors import ApplicationError, NotFound, PermissionDenied
from backend.services.auth import user_authenticate, user_register
from backend.services.availability import mentor_availability
from backend.services.booking_slots import mentor_prices
from backend.services.cancellation_policy import cancellation_policy_current, cancellation_policy_lines
from backend.services.cancellations import session_cancel_refunding, session_cancel_terms
from backend.services.checkouts import (
    CheckoutState,
    checkout_create,
    checkout_hold_cancel,
    checkout_holds_open,
    checkout_state_get,
)
from backend.services.email_verification import EmailNotVerified, email_verification_send, email_verify
from backend.services.mentors import expertise_list, mentor_get, mentor_list
from backend.services.money import money_format
from backend.services.notifications import session_ics
from backend.services.payout_accounts import (
    mentor_of,
    payout_account_get,
    payout_account_onboarding_link,
    payout_account_sync,
)
from backend.services.payouts import mentor_payout_summary, payouts_for_mentor
from backend.services.rate_limits import client_address, email_link_throttle, request_throttle
from backend.services.sessions import session_get_for_user, session_list_for_user
from backend.services.site import request_site_url
from backend.web.forms import BookingForm, LoginForm, RegisterForm

MENTORS_PER_PAGE = 12
SESSIONS_SHOWN = 50
PAYOUTS_SHOWN = 100
# A payout's status, as the mentor reads it.
PAYOUT_STATUS_WORDS = {
    "scheduled": "scheduled", "waiting": "waiting for your payout account", "held": "on hold",
    "paid": "sent", "partially_reversed": "sent, partly taken back", "reversed": "taken back",
    "failed": "not sent: we are looking into it", "cancelled": "nothing owed (cancelled or refunded)",
}


def _form_error(form, exc: ApplicationError) -> None:
    """Show a service's error, in a person's words, next to the field it names, else above the form."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.user_message)


def home(request):
    return redirect("web:mentors")


def mentors(request):
    query, expertise = request.GET.get("q", "").strip(), request.GET.get("expertise", "").strip()
    page = Paginator(mentor_list(expertise=expertise or None, search=query or None), MENTORS_PER_PAGE).get_page(
        request.GET.get("page"))
    return render(request, "web/mentors.html", {
        "page": page, "q": query, "expertise": expertise, "topics": expertise_list(),
    })


@require_http_methods(["GET", "POST"])
def mentor_detail(request, mentor_id: int):
    try:
        mentor = mentor_get(mentor_id=mentor_id)
    except NotFound:
        return render(request, "web/not_found.html", {"what": "This mentor"}, status=404)
    prices = {minutes: money_format(amount, mentor.currency) for minutes, amount in mentor_prices(mentor=mentor).items()}
    own_profile = request.user.is_authenticated and mentor.user_id == request.user.pk
    form = BookingForm(request.POST or None, prices=prices)
    error_code = None
    needs_verification = False
    if request.method == "POST" and not own_profile:
        if not request.user.is_authenticated:
            return redirect(f"{settings.LOGIN_URL}?next={request.path}")
        if form.is_valid():
            try:
                request_throttle(request, group="checkout_create", rate_setting="CHECKOUT_RATE_LIMIT")
                checkout = checkout_create(
                    mentee=request.user, mentor_id=mentor.pk, title=form.cleaned_data["title"],
                    description=form.cleaned_data["description"], scheduled_at=form.cleaned_data["scheduled_at"],
                    duration_minutes=form.cleaned_data["duration_minutes"], client_address=client_address(request),
                    site_url=request_site_url(request), time_zone=form.cleaned_data["timezone"].key,
                )
                return redirect(checkout.checkout_url)
            except ApplicationError as exc:
                needs_verification = isinstance(exc, EmailNotVerified)
                _form_error(form, exc)
                error_code = exc.code
    try:
        minutes_now = int(form["duration_minutes"].value())
    except (TypeError, ValueError):
        minutes_now = form.fields["duration_minutes"].initial
    canceled = bool(request.GET.get("canceled"))
    held = checkout_holds_open(mentee=request.user, mentor_id=mentor.pk) if canceled and request.user.is_authenticated else []
    return render(request, "web/mentor.html", {
        "mentor": mentor, "form": form, "canceled": canceled, "held": held, "own_profile": own_profile,
        "needs_verification": needs_verification,
        "prices": prices, "prices_json": json.dumps({str(k): v for k, v in prices.items()}),
        "slot_days": 14, "minutes_now": minutes_now, "price_now": prices.get(minutes_now, ""),
        "free": mentor_availability(mentor_id=mentor.pk),  # the next 14 days, for browsers without script
        "too_many_holds": error_code == "too_many_open_holds",
        "policy_lines": cancellation_policy_lines(cancellation_policy_current()),
    }, status=(403 if needs_verification else 422) if form.errors else 200)


@login_required
def sessions(request):
    context = {
        "as_mentee": session_list_for_user(user=request.user, role="mentee", with_refunds=True)[:SESSIONS_SHOWN],
        "as_mentor": session_list_for_user(user=request.user, role="mentor", with_refunds=True)[:SESSIONS_SHOWN],
        "holds": checkout_holds_open(mentee=request.user),
        "refund_cutoff_hours": settings.REFUND_CUTOFF_HOURS,
    }
    cs_id = request.GET.get("session_id", "")
    if request.GET.get("success") and cs_id:
        try:
            state, checkout, context["returned_session"] = checkout_state_get(
                user=request.user, stripe_checkout_session_id=cs_id)
            context.update(checkout_state=state, returned_checkout=checkout, cs_id=cs_id,
                           final=state not in (CheckoutState.OPEN, CheckoutState.PROCESSING))
        except NotFound:
            messages.error(request, "We could not find that payment among your bookings.")
    return render(request, "web/sessions.html", context)


@login_required
@require_POST
def checkout_hold_cancel_page(request, cs_id: str):
    """The "Cancel hold" button: the Checkout is expired at Stripe and the slot freed."""
    try:
        _, checkout, _ = checkout_hold_cancel(user=request.user, stripe_checkout_session_id=cs_id)
        messages.success(request, f"Hold released: \u201c{checkout.title}\u201d is not booked and nothing was "
                                  "charged; the slot is free again.")
    except NotFound:
        messages.error(request, "We could not find that booking among yours.")
    except ApplicationError as exc:
        messages.error(request, exc.user_message)
    return redirect(_next_url(request))


@login_required
@require_http_methods(["GET", "POST"])
def session_cancel_page(request, session_id: int):
    try:
        session = session_get_for_user(user=request.user, session_id=session_id)
    except NotFound:
        return render(request, "web/not_found.html", {"what": "This session"}, status=404)
    is_mentor = session.mentor.user_id == request.user.pk
    if request.method == "POST":
        try:
            request_throttle(request, group="session_cancel", rate_setting="CANCEL_RATE_LIMIT")
            was_cancelled = session.status == session.Status.CANCELLED
            session, refund = session_cancel_refunding(user=request.user, session_id=session.pk,
                                                       reason=request.POST.get("reason", ""))
            messages.success(request, _cancel_outcome_text(session, refund, is_mentor=is_mentor,
                                                            was_cancelled=was_cancelled))
            return redirect("web:mentor_bookings" if is_mentor else "web:sessions")
        except ApplicationError as exc:
            messages.error(request, exc.user_message)
    terms = session_cancel_terms(session=session, user=request.user)
    refundable = terms.refundable
    return render(request, "web/session_cancel.html", {
        "session": session, "is_mentor": is_mentor, "refundable": refundable, "terms": terms,
        "other_party": session.mentee.name if is_mentor else session.mentor.name,
        "can_cancel": session.status == session.Status.SCHEDULED and not session.is_disputed and refundable,
        "refund_cutoff_hours": settings.REFUND_CUTOFF_HOURS,
    })


def _cancel_outcome_text(session, refund, *, is_mentor: bool, was_cancelled: bool) -> str:
    """What the flash says after a cancel: only what really happened to the money."""
    title = f"\u201c{session.title}\u201d"
    if was_cancelled:
        return f"{title} was already cancelled."
    if refund is None:
        if session.payment_status == session.PaymentStatus.PAID and session.refunded_amount < session.amount:
            # Another refund is on its way (one made at Stripe); the rest follows once it settles.
            return f"{title} is cancelled. A refund already on its way is settling first; the rest follows it."
        return f"{title} is cancelled. Nothing was left to refund."
    amount = money_format(refund.amount, refund.currency)
    if is_mentor:
        return f"{title} is cancelled. {session.mentee.name} gets a refund of {amount}."
    return (f"{title} is cancelled. A refund of {amount} is requested; this page shows when Stripe confirms it, "
            "and we email you.")


@login_required
def session_calendar(request, session_id: int):
    try:
        session = session_get_for_user(user=request.user, session_id=session_id)
    except NotFound:
        return render(request, "web/not_found.html", {"what": "This session"}, status=404)
    response = HttpResponse(session_ics(session=session, tz_name=request.user.time_zone),
                            content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="session-{session.pk}.ics"'
    return response


def _not_a_mentor(request):
    return render(request, "web/not_found.html", {"what": "A payout account"}, status=403)


@login_required
def mentor_payouts(request):
    """The mentor's payouts: the account's state in words, connect or continue onboarding, what
    was sent and what is still owed. Back from Stripe's onboarding, the account is read again."""
    try:
        mentor = mentor_of(request.user)
        returned = request.GET.get("onboarding") == "return"
        account = payout_account_sync(user=request.user) if returned else payout_account_get(user=request.user)
    except PermissionDenied:
        return _not_a_mentor(request)
    payouts = list(payouts_for_mentor(user=request.user)[:PAYOUTS_SHOWN])
    for payout in payouts:
        payout.status_words = PAYOUT_STATUS_WORDS.get(payout.status, payout.status)
    return render(request, "web/mentor_payouts.html", {
        "account": account, "summary": mentor_payout_summary(mentor=mentor), "payouts": payouts,
        "returned": returned, "delay_hours": settings.PAYOUT_DELAY_HOURS,
        "fee_percent": settings.PLATFORM_FEE_PERCENT,
    })


@login_required
@require_http_methods(["GET", "POST"])
def mentor_payouts_onboarding(request):
    """"Connect" / "Continue onboarding" (POST), and Stripe's refresh_url (GET: a link that expired
    or was used): a fresh account link, and off to Stripe."""
    try:
        return redirect(payout_account_onboarding_link(user=request.user, site_url=request_site_url(request)))
    except PermissionDenied:
        return _not_a_mentor(request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("web:mentor_payouts")


@require_http_methods(["GET", "POST"])
def login_page(request):
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_authenticate(email=form.cleaned_data["email"], password=form.cleaned_data["password"],
                                     client_address=client_address(request))
            login(request, user)
            return redirect(_next_url(request))
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    return render(request, "web/login.html", {"form": form, "next": _next_url(request)})


@require_http_methods(["GET", "POST"])
def register_page(request):
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            request_throttle(request, group="auth_register", rate_setting="REGISTER_RATE_LIMIT")
            user = user_register(**form.cleaned_data, site_url=request.build_absolute_uri("/"))
            login(request, user)  # the one backend (settings.AUTHENTICATION_BACKENDS)
            return redirect(_next_url(request))
        except ApplicationError as exc:
            _form_error(form, exc)
    return render(request, "web/register.html", {"form": form, "next": _next_url(request)})


@require_POST
def logout_page(request):
    # The pages hold no API tokens, only this session: flushing it is the whole logout.
    logout(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)


@login_required
@require_POST
def verify_email_send(request):
    """Mail the signed-in user their verification link again (EMAIL_LINK_RATE_LIMIT)."""
    try:
        email_link_throttle(request, recipient=request.user.email)
        if email_verification_send(user=request.user, site_url=request.build_absolute_uri("/")):
            messages.success(request, f"We emailed a verification link to {request.user.email}.")
        else:
            messages.success(request, "Your email address is verified already.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(_next_url(request, default="web:mentors"))


def verify_email_confirm(request, uidb64: str, token: str):
    """The link mailed to the user: their address is verified (or the link is refused)."""
    try:
        user = email_verify(uidb64=uidb64, token=token)
    except ApplicationError as exc:
        return render(request, "web/email_verified.html", {"error": exc.message}, status=400)
    return render(request, "web/email_verified.html", {"verified_email": user.email})


class PasswordResetPage(auth_views.PasswordResetView):
    """Django's password reset, counted against EMAIL_LINK_RATE_LIMIT per address and per
    typed email (whether or not an account has it: the answer never tells)."""

    template_name = "web/password_reset.html"
    email_template_name = "web/password_reset_email.txt"
    subject_template_name = "web/password_reset_subject.txt"
    success_url = reverse_lazy("web:password_reset_done")

    def form_valid(self, form):
        try:
            email_link_throttle(self.request, recipient=form.cleaned_data["email"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)


password_reset_done = auth_views.PasswordResetDoneView.as_view(template_name="web/password_reset_done.html")
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="web/password_reset_confirm.html", success_url=reverse_lazy("web:password_reset_complete"))
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(template_name="web/password_reset_complete.html")
password_change = auth_views.PasswordChangeView.as_view(
    template_name="web/password_change.html", success_url=reverse_lazy("web:password_change_done"))
password_change_done = auth_views.PasswordChangeDoneView.as_view(template_name="web/password_change_done.html")


def _next_url(request, default: str = settings.LOGIN_REDIRECT_URL) -> str:
    """Where to go after signing in: `next` when Django's own check finds it on this site
    (no other host, scheme or `//`/backslash trick), else `default` (the sessions)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default
