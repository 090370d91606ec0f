"""The mentor's side of the pages: their bookings, their availability, their profile.

Times are shown in the mentor's own time zone (User.time_zone), with the zone named.
"""
from datetime import date, datetime, time, timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from backend.errors import ApplicationError
from backend.models import Mentor
from backend.services.availability import (
    mentor_availability,
    mentor_schedule_own,
    mentor_schedule_set,
    mentor_schedule_zone_for_editing,
)
from backend.services.local_time import date_param, intervals_by_local_day, local_date, local_date_text, zone
from backend.services.mentors import mentor_bookings, mentor_profile_update
from backend.services.slots import overlapping, scheduled_sessions
from backend.web.mentor_forms import BlockDateForm, MentorProfileForm, ScheduleZoneForm, WindowFormSet

BOOKINGS_PER_PAGE = 20
PREVIEW_DAYS = 14


def mentor_required(view):
    """Signed in, and a mentor: anyone else is told these pages are for mentors (403)."""
    @login_required
    @wraps(view)
    def checked(request, *args, **kwargs):
        mentor = Mentor.objects.filter(user=request.user).first()
        if mentor is None:
            return render(request, "web/mentor_only.html", status=403)
        return view(request, mentor, *args, **kwargs)
    return checked


@mentor_required
def mentor_bookings_page(request, mentor: Mentor):
    when = "past" if request.GET.get("when") == "past" else "upcoming"
    page = Paginator(mentor_bookings(user=request.user, when=when), BOOKINGS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "web/mentor_bookings.html", {
        "mentor": mentor, "when": when, "page": page, "time_zone": request.user.time_zone,
        "has_schedule": mentor.weekly_availability.exists(),
    })


def _preview_start(request, tz_name: str) -> date:
    """The first day of the preview: `?from=YYYY-MM-DD`, else today in the mentor's zone."""
    return date_param(request.GET.get("from")) or local_date(timezone.now(), tz_name)


@mentor_required
@require_http_methods(["GET", "POST"])
def mentor_availability_page(request, mentor: Mentor):
    user = request.user
    schedule = mentor_schedule_own(user=user)
    editing_zone = mentor_schedule_zone_for_editing(user=user)
    stored = [{"weekday": w.weekday, "start_time": w.start_time, "end_time": w.end_time} for w in schedule.windows]
    windows = WindowFormSet(request.POST if request.POST.get("action") == "hours" else None, initial=stored,
                            prefix="windows")
    zone_form = ScheduleZoneForm(request.POST if request.POST.get("action") == "hours" else None,
                                 initial={"time_zone": editing_zone})
    block_form = BlockDateForm(request.POST if request.POST.get("action") == "block" else None)

    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "hours" and windows.is_valid() and zone_form.is_valid():
                mentor_schedule_set(user=user, windows=windows.windows(), time_zone=zone_form.cleaned_data["time_zone"])
                messages.success(request, "Weekly hours saved. Sessions already booked are kept as they are.")
                return redirect(request.get_full_path())
            if action == "block" and block_form.is_valid():
                day = block_form.cleaned_data["date"]
                mentor_schedule_set(user=user, blocked_dates=[*schedule.blocked_dates, day])
                messages.success(request, f"{local_date_text(day)} is blocked. Sessions already booked that day are kept.")
                return redirect(request.get_full_path())
            if action == "unblock":
                day = date_param(request.POST.get("date"))
                mentor_schedule_set(user=user, blocked_dates=[d for d in schedule.blocked_dates if d != day])
                messages.success(request, "The day is bookable again.")
                return redirect(request.get_full_path())
        except ApplicationError as exc:
            messages.error(request, exc.message)

    first_day = _preview_start(request, user.time_zone)
    tz = zone(user.time_zone)
    starts = datetime.combine(first_day, time.min, tzinfo=tz)
    ends = datetime.combine(first_day + timedelta(days=PREVIEW_DAYS), time.min, tzinfo=tz)
    free = mentor_availability(mentor_id=mentor.pk, starts=starts, ends=ends)
    booked = list(overlapping(scheduled_sessions().filter(mentor=mentor), starts=starts, ends=ends)
                  .select_related("mentee").order_by("scheduled_at"))
    return render(request, "web/mentor_availability.html", {
        "mentor": mentor, "schedule": schedule, "windows": windows, "zone_form": zone_form,
        "block_form": block_form, "time_zone": user.time_zone, "editing_zone": editing_zone,
        "free_days": intervals_by_local_day(free, user.time_zone), "booked": booked,
        "first_day": first_day, "last_day": first_day + timedelta(days=PREVIEW_DAYS - 1),
        "earlier": first_day - timedelta(days=PREVIEW_DAYS), "later": first_day + timedelta(days=PREVIEW_DAYS),
        "today": local_date(timezone.now(), user.time_zone), "lead_minutes": settings.BOOKING_MIN_LEAD_MINUTES,
    }, status=422 if windows.is_bound and not (windows.is_valid() and zone_form.is_valid()) else 200)


@mentor_required
@require_http_methods(["GET", "POST"])
def mentor_profile_page(request, mentor: Mentor):
    form = MentorProfileForm(request.POST or None, mentor=mentor)
    if request.method == "POST" and form.is_valid():
        try:
            mentor_profile_update(user=request.user, **form.cleaned_data)
            messages.success(request, "Profile saved. New bookings are priced from it; booked sessions keep their price.")
            return redirect("web:mentor_profile")
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    return render(request, "web/mentor_profile.html", {"mentor": mentor, "form": form},
                  status=422 if form.errors else 200)
