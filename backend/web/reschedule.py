"""The reschedule page: move a paid session to another free time of its mentor.

The free starts are listed in the reader's own time zone (User.time_zone), two weeks at a
time; the service decides (policy, overlap, schedule), the page only offers and reports.
"""
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from backend.errors import ApplicationError, NotFound
from backend.services.availability import mentor_availability, slot_starts
from backend.services.local_time import (
    date_param,
    intervals_by_local_day,
    local_clock_text,
    local_date,
    local_date_text,
    zone,
)
from backend.services.rate_limits import request_throttle
from backend.services.reschedules import session_reschedule, session_reschedule_terms
from backend.services.sessions import session_get_for_user
from backend.web.forms import RescheduleForm

DAYS_SHOWN = 14


def _starts_by_day(starts: list[datetime], tz_name: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Choices grouped by the reader's local day: [(day, [(ISO instant, "19:30 IST"), ...]), ...]."""
    days = intervals_by_local_day([(s, s + timedelta(seconds=1)) for s in starts], tz_name)
    return [(local_date_text(day), [(start.isoformat(), local_clock_text(start, tz_name)) for start, _ in pieces])
            for day, pieces in days]


@login_required
@require_http_methods(["GET", "POST"])
def session_reschedule_page(request, session_id: int):
    try:
        session = session_get_for_user(user=request.user, session_id=session_id)
    except NotFound:
        return render(request, "web/not_found.html", {"what": "This session"}, status=404)
    tz_name = request.user.time_zone
    today = local_date(timezone.now(), tz_name)
    first_day = max(today, date_param(request.GET.get("from")) or today)
    starts = datetime.combine(first_day, time.min, tzinfo=zone(tz_name))
    try:
        free = mentor_availability(mentor_id=session.mentor_id, starts=starts,
                                   ends=starts + timedelta(days=DAYS_SHOWN), excluding_session_id=session.pk)
    except NotFound:  # the mentor left the catalogue: nothing to offer, the session stays as it is
        free = []
    choices = _starts_by_day([s for s in slot_starts(free, duration_minutes=session.duration_minutes)
                              if s != session.scheduled_at], tz_name)
    form = RescheduleForm(request.POST or None, starts=choices)
    if request.method == "POST" and form.is_valid():
        try:
            request_throttle(request, group="session_reschedule", rate_setting="RESCHEDULE_RATE_LIMIT")
            moved = session_reschedule(user=request.user, session_id=session.pk,
                                       scheduled_at=form.cleaned_data["scheduled_at"])
            messages.success(request, f"\u201c{moved.title}\u201d is moved; both of you get an updated calendar invite. "
                                      "The payment carries over.")
            return redirect("web:mentor_bookings" if moved.mentor.user_id == request.user.pk else "web:sessions")
        except ApplicationError as exc:
            form.add_error("scheduled_at" if exc.field == "scheduled_at" else None, exc.message)
    terms = session_reschedule_terms(session=session, user=request.user)
    return render(request, "web/session_reschedule.html", {
        "session": session, "form": form, "terms": terms, "time_zone": tz_name, "has_choices": bool(choices),
        "free_days": intervals_by_local_day(free, tz_name),
        "first_day": first_day, "last_day": first_day + timedelta(days=DAYS_SHOWN - 1),
        "earlier": max(today, first_day - timedelta(days=DAYS_SHOWN)) if first_day > today else None,
        "later": first_day + timedelta(days=DAYS_SHOWN),
        "reschedule_notice_hours": settings.RESCHEDULE_NOTICE_HOURS, "max_reschedules": settings.MAX_RESCHEDULES,
    }, status=422 if form.errors else 200)
