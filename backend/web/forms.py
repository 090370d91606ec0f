"""Forms of the pages; each turns browser input into a service call's arguments. Limits come
from the models, and text is checked by the same rule as the API's (services/text.py)."""
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.conf import settings

from backend.models import Checkout, User, field_max_length
from backend.services.text import text_storable_check


def _storable_text(value: str) -> str:
    try:
        return text_storable_check(value)
    except ValueError as exc:
        raise forms.ValidationError(str(exc))


class BookingForm(forms.Form):
    """The booking form on a mentor's page; the start is typed in the mentee's time zone."""

    title = forms.CharField(max_length=field_max_length(Checkout, "title"), validators=[_storable_text])
    description = forms.CharField(max_length=field_max_length(Checkout, "description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}), validators=[_storable_text])
    scheduled_at = forms.DateTimeField(label="Date and time", input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    duration_minutes = forms.TypedChoiceField(label="Duration", coerce=int)
    # Filled by the page's script with the browser's IANA zone; UTC without script.
    timezone = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["duration_minutes"].choices = [(d, f"{d} minutes") for d in settings.BOOKING_ALLOWED_DURATIONS]
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


class LoginForm(forms.Form):
    email = forms.EmailField(max_length=field_max_length(User, "email"))
    password = forms.CharField(widget=forms.PasswordInput, max_length=User.PASSWORD_MAX_LENGTH)
