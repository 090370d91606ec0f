"""The pages: thin like the API's routers; the rules live in services."""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from backend.errors import ApplicationError, NotFound
from backend.services.auth import user_authenticate, user_register
from backend.services.availability import mentor_availability
from backend.services.cancellations import session_cancel, session_cancel_refundable
from backend.services.checkouts import checkout_create, checkout_holds_open, checkout_state_get
from backend.services.mentors import expertise_list, mentor_get, mentor_list
from backend.services.notifications import session_ics
from backend.services.rate_limits import client_address, request_throttle
from backend.services.sessions import session_get_for_user, session_list_for_user
from backend.web.forms import BookingForm, LoginForm, RegisterForm

MENTORS_PER_PAGE = 12
SESSIONS_SHOWN = 50


def _form_error(form, exc: ApplicationError) -> None:
    """Show a service's error next to the field it names, else above the form."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


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
    form = BookingForm(request.POST or None)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{settings.LOGIN_URL}?next={request.path}")
        if form.is_valid():
            try:
                request_throttle(request, group="checkout_create", rate_setting="CHECKOUT_RATE_LIMIT")
                checkout = checkout_create(
                    mentee=request.user, mentor_id=mentor.pk, title=form.cleaned_data["title"],
                    description=form.cleaned_data["description"], scheduled_at=form.cleaned_data["scheduled_at"],
                    duration_minutes=form.cleaned_data["duration_minutes"],
                )
                return redirect(checkout.checkout_url)
            except ApplicationError as exc:
                _form_error(form, exc)
    canceled = bool(request.GET.get("canceled"))
    held = checkout_holds_open(mentee=request.user, mentor_id=mentor.pk) if canceled and request.user.is_authenticated else []
    return render(request, "web/mentor.html", {
        "mentor": mentor, "form": form, "canceled": canceled, "held": held,
        "free": mentor_availability(mentor_id=mentor.pk),  # the next 14 days
    }, status=422 if form.errors else 200)


@login_required
def sessions(request):
    context = {
        "as_mentee": session_list_for_user(user=request.user, role="mentee")[:SESSIONS_SHOWN],
        "as_mentor": session_list_for_user(user=request.user, role="mentor")[:SESSIONS_SHOWN],
        "refund_cutoff_hours": settings.REFUND_CUTOFF_HOURS,
    }
    cs_id = request.GET.get("session_id", "")
    if request.GET.get("success") and cs_id:
        try:
            context["checkout_state"], _, context["returned_session"] = checkout_state_get(
                user=request.user, stripe_checkout_session_id=cs_id)
            context["cs_id"] = cs_id
        except NotFound:
            messages.error(request, "We could not find that payment among your bookings.")
    return render(request, "web/sessions.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def session_cancel_page(request, session_id: int):
    try:
        session = session_get_for_user(user=request.user, session_id=session_id)
    except NotFound:
        return render(request, "web/not_found.html", {"what": "This session"}, status=404)
    if request.method == "POST":
        try:
            request_throttle(request, group="session_cancel", rate_setting="CANCEL_RATE_LIMIT")
            session_cancel(user=request.user, session_id=session.pk, reason=request.POST.get("reason", "")[:500])
            messages.success(request, f"\u201c{session.title}\u201d is cancelled; the refund is on its way.")
            return redirect("web:sessions")
        except ApplicationError as exc:
            messages.error(request, exc.message)
    is_mentor = session.mentor.user_id == request.user.pk
    refundable = session_cancel_refundable(session=session, user=request.user)
    return render(request, "web/session_cancel.html", {
        "session": session, "is_mentor": is_mentor, "refundable": refundable,
        "refund_cutoff_hours": settings.REFUND_CUTOFF_HOURS,
    })


@login_required
def session_calendar(request, session_id: int):
    try:
        session = session_get_for_user(user=request.user, session_id=session_id)
    except NotFound:
        return render(request, "web/not_found.html", {"what": "This session"}, status=404)
    response = HttpResponse(session_ics(session=session), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="session-{session.pk}.ics"'
    return response


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
            user = user_register(**form.cleaned_data)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(_next_url(request))
        except ApplicationError as exc:
            _form_error(form, exc)
    return render(request, "web/register.html", {"form": form, "next": _next_url(request)})


@require_POST
def logout_page(request):
    logout(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)


def _next_url(request) -> str:
    """Where to go after signing in: `next` when it is a path on this site, else the sessions."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    return target if target.startswith("/") and not target.startswith("//") else settings.LOGIN_REDIRECT_URL
