"""Forms of the pages; each turns browser input into a service call's arguments. Limits come
from the models, and text is checked by the same rule as the API's (services/text.py)."""
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.conf import settings

from backend.errors import InvalidInput
from backend.models import Checkout, User, field_max_length
from backend.services.local_time import time_zone_check
from backend.services.local_time import time_zone_choices as zone_names
from backend.services.text import text_storable_check


def _storable_text(value: str) -> str:
    try:
        return text_storable_check(value)
    except ValueError as exc:
        raise forms.ValidationError(str(exc))


class BookingForm(forms.Form):
    """The booking form on a mentor's page; the start is typed in the mentee's time zone."""

    title = forms.CharField(max_length=field_max_length(Checkout, "title"), validators=[_storable_text],
                            error_messages={"required": "Give the session a title."})
    description = forms.CharField(max_length=field_max_length(Checkout, "description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}), validators=[_storable_text])
    scheduled_at = forms.DateTimeField(label="Date and time", input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                       error_messages={"required": "Pick a date and time.",
                                                       "invalid": "Pick a date and time."})
    duration_minutes = forms.TypedChoiceField(label="Duration", coerce=int, error_messages={
        "required": "Pick how long the session lasts.",
        "invalid_choice": "Pick one of the durations listed."})
    # Filled by the page's script with the browser's IANA zone; UTC without script.
    timezone = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, prices: dict[int, str] | None = None, **kwargs):
        """`prices`: each duration's price as text, shown in its option (the price before paying)."""
        super().__init__(*args, **kwargs)
        prices = prices or {}
        self.fields["duration_minutes"].choices = [
            (d, f"{d} minutes \u00b7 {prices[d]}" if d in prices else f"{d} minutes")
            for d in settings.BOOKING_ALLOWED_DURATIONS]
        self.fields["duration_minutes"].initial = 60 if 60 in settings.BOOKING_ALLOWED_DURATIONS else None

    def clean_timezone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.cleaned_data.get("timezone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def clean(self):
        cleaned = super().clean()
        start: datetime | None = cleaned.get("scheduled_at")
        if start is not None:
            # The browser sends wall-clock time; Django made it aware in UTC, so re-read it in the mentee's zone.
            cleaned["scheduled_at"] = start.replace(tzinfo=None).replace(tzinfo=cleaned.get("timezone") or ZoneInfo("UTC"))
        return cleaned


class RegisterForm(forms.Form):
    name = forms.CharField(max_length=field_max_length(User, "name"), validators=[_storable_text])
    email = forms.EmailField(max_length=field_max_length(User, "email"))
    password = forms.CharField(widget=forms.PasswordInput, max_length=User.PASSWORD_MAX_LENGTH)
    # Filled by the page's script with the browser's IANA zone; UTC without script (changeable on /account).
    time_zone = forms.CharField(required=False, max_length=field_max_length(User, "time_zone"),
                                widget=forms.HiddenInput)

    def clean_time_zone(self) -> str:
        # A browser's zone this machine does not know is no reason to refuse an account.
        try:
            return time_zone_check(self.cleaned_data.get("time_zone"))
        except InvalidInput:
            return "UTC"


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in zone_names()]


class TimeZoneField(forms.CharField):
    """An IANA zone picked from a list of current names; an old alias (Asia/Calcutta, which some
    browsers report) is accepted too and stored under its current name."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", field_max_length(User, "time_zone"))
        super().__init__(widget=forms.Select(choices=time_zone_choices()), **kwargs)

    def clean(self, value):
        value = super().clean(value)
        try:
            return time_zone_check(value)
        except InvalidInput:
            raise forms.ValidationError("Pick a time zone from the list, e.g. Europe/Berlin")


def zone_offered(form: forms.Form, name: str, value: str | None) -> None:
    """Keep a stored zone that the list does not offer (an old alias) selectable."""
    widget = form.fields[name].widget
    if value and value not in {choice for choice, _ in widget.choices}:
        widget.choices = [*widget.choices, (value, value.replace("_", " "))]


class AccountForm(forms.Form):
    """A person's own settings: their name and the time zone they read times in."""

    name = forms.CharField(max_length=field_max_length(User, "name"), validators=[_storable_text])
    time_zone = TimeZoneField(label="Time zone", help_text="Pages, emails and calendar invites show times in it.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        zone_offered(self, "time_zone", self.initial.get("time_zone"))


class RescheduleForm(forms.Form):
    """The reschedule page: one of the free starts it offers (an ISO instant)."""

    scheduled_at = forms.DateTimeField(label="New time", input_formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"])

    def __init__(self, *args, starts: list[tuple[str, list[tuple[str, str]]]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        # Grouped by day: [(day label, [(iso value, time label), ...]), ...].
        self.fields["scheduled_at"].widget = forms.Select(choices=[("", "Pick a new time"), *starts])


class LoginForm(forms.Form):
    email = forms.EmailField(max_length=field_max_length(User, "email"))
    password = forms.CharField(widget=forms.PasswordInput, max_length=User.PASSWORD_MAX_LENGTH)
