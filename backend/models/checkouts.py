from django.conf import settings
from django.db import models


class Checkout(models.Model):
    """One Stripe Checkout Session, and the hold on a mentor's slot while the mentee pays."""

    class Status(models.TextChoices):
        OPEN = "open"
        COMPLETE = "complete"
        EXPIRED = "expired"

    mentee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="checkouts")
    mentor = models.ForeignKey("backend.Mentor", on_delete=models.PROTECT, related_name="checkouts")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=2000)
    scheduled_at = models.DateTimeField()
    duration_minutes = models.PositiveIntegerField()
    ends_at = models.DateTimeField()
    amount = models.PositiveIntegerField(help_text="Minor units")
    currency = models.CharField(max_length=3)
    # Null only between our insert and Stripe's answer, inside one transaction.
    stripe_checkout_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["mentor", "status", "scheduled_at"]), models.Index(fields=["status", "expires_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="checkout_amount_positive"),
            models.CheckConstraint(condition=models.Q(duration_minutes__gt=0), name="checkout_duration_positive"),
        ]

    def __str__(self):
        return f"Checkout {self.pk} ({self.status})"
