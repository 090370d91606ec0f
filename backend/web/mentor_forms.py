"""Forms of the mentor's pages: weekly hours, blocked dates, and the profile."""
from decimal import Decimal, InvalidOperation

from django import forms

from backend.models import Mentor, WeeklyAvailability, field_max_length
from backend.services.mentors import BIO_MAX_LENGTH
from backend.services.money import currency_decimals
from backend.web.forms import TimeZoneField, _storable_text, zone_offered

# Offered on the profile page; the API takes any ISO 4217 code Stripe supports.
CURRENCIES = ["usd", "eur", "gbp", "inr", "cad", "aud", "chf", "jpy", "sgd", "sek"]
# Empty rows under the windows a mentor already has.
EXTRA_WINDOW_ROWS = 3


class WindowForm(forms.Form):
    """One weekly window, in local wall-clock time; an end at or before the start is the next day."""

    # An empty first choice: the blank rows under the windows stay blank, so they are skipped.
    weekday = forms.TypedChoiceField(choices=[("", "Day"), *WeeklyAvailability.Weekday.choices], coerce=int,
                                     empty_value=None)
    start_time = forms.TimeField(label="From", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    end_time = forms.TimeField(label="To", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))


class BaseWindowFormSet(forms.BaseFormSet):
    def windows(self) -> list[dict]:
        """The rows kept: filled in and not marked for removal."""
        return [
            {key: form.cleaned_data[key] for key in ("weekday", "start_time", "end_time")}
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]


WindowFormSet = forms.formset_factory(WindowForm, formset=BaseWindowFormSet, extra=EXTRA_WINDOW_ROWS,
                                      can_delete=True, max_num=50, validate_max=True)


class ScheduleZoneForm(forms.Form):
    time_zone = TimeZoneField(label="These hours are in")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        zone_offered(self, "time_zone", self.initial.get("time_zone"))


class BlockDateForm(forms.Form):
    date = forms.DateField(label="Day off", widget=forms.DateInput(attrs={"type": "date"}))


class MentorProfileForm(forms.Form):
    """The public profile; the rate is typed in the currency's units (120.00) and kept in minor units."""

    name = forms.CharField(max_length=field_max_length(Mentor, "name"), validators=[_storable_text])
    headline = forms.CharField(max_length=field_max_length(Mentor, "headline"), required=False,
                               validators=[_storable_text])
    bio = forms.CharField(max_length=BIO_MAX_LENGTH, required=False, widget=forms.Textarea(attrs={"rows": 6}),
                          validators=[_storable_text])
    hourly_rate = forms.CharField(label="Hourly rate", max_length=12,
                                  help_text="Per hour; a session's price is computed from it when it is booked.")
    currency = forms.ChoiceField(choices=[(c, c.upper()) for c in CURRENCIES])

    def __init__(self, *args, mentor: Mentor | None = None, **kwargs):
        if mentor is not None and "initial" not in kwargs:
            decimals = currency_decimals(mentor.currency)
            kwargs["initial"] = {
                "name": mentor.name, "headline": mentor.headline, "bio": mentor.bio, "currency": mentor.currency,
                "hourly_rate": f"{Decimal(mentor.hourly_rate).scaleb(-decimals):.{decimals}f}",
            }
        super().__init__(*args, **kwargs)
        if mentor is not None and mentor.currency not in CURRENCIES:
            self.fields["currency"].choices = [*self.fields["currency"].choices, (mentor.currency, mentor.currency.upper())]

    def clean(self):
        cleaned = super().clean()
        rate, currency = cleaned.get("hourly_rate"), cleaned.get("currency")
        if rate is None or currency is None:
            return cleaned
        decimals = currency_decimals(currency)
        try:
            value = Decimal(rate.replace(",", "").strip())
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value <= 0 or value != round(value, decimals):
            self.add_error("hourly_rate", f"Enter a positive amount with at most {decimals} decimals, e.g. "
                           f"{Decimal(120).quantize(Decimal(1).scaleb(-decimals))}")
            return cleaned
        cleaned["hourly_rate"] = int(value.scaleb(decimals))
        return cleaned
