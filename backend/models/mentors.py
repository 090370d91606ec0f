from django.conf import settings
from django.db import models


class Expertise(models.Model):
    """A topic a mentor teaches (python, system-design, ...); mentors are filtered by it."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=80)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name


class Mentor(models.Model):
    """A user who sells sessions. Money is in integer minor units of `currency`."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="mentor")
    name = models.CharField(max_length=150)
    headline = models.CharField(max_length=200, blank=True)
    bio = models.TextField(blank=True)
    expertise = models.ManyToManyField(Expertise, related_name="mentors", blank=True)
    hourly_rate = models.PositiveIntegerField(help_text="Minor units (cents) per hour")
    currency = models.CharField(max_length=3, default="usd", help_text="ISO 4217, lower case as Stripe uses")
    is_active = models.BooleanField(default=True)

    # Derived from paid, non-refunded sessions by mentor_stats_recompute.
    total_sessions = models.PositiveIntegerField(default=0)
    total_minutes = models.PositiveIntegerField(default=0)
    total_earnings = models.BigIntegerField(default=0, help_text="Minor units")
    stats_updated_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # The public catalogue: active mentors by name.
            models.Index(fields=["name", "id"], condition=models.Q(is_active=True), name="mentor_active_by_name"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(hourly_rate__gt=0), name="mentor_hourly_rate_positive"),
            models.CheckConstraint(condition=models.Q(currency__regex=r"^[a-z]{3}$"), name="mentor_currency_iso"),
        ]

    def __str__(self):
        return self.name
