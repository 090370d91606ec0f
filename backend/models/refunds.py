from django.conf import settings
from django.db import models


class Refund(models.Model):
    """A refund of a session's payment, asked by us or seen from Stripe (Dashboard)."""

    class Status(models.TextChoices):
        REQUESTED = "requested"  # our row exists, Stripe not yet asked
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELED = "canceled"

    session = models.ForeignKey("backend.Session", on_delete=models.PROTECT, related_name="refunds")
    stripe_refund_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    amount = models.PositiveIntegerField(help_text="Minor units")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    reason = models.CharField(max_length=255, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    # Stripe's reason when it fails a refund after the fact (e.g. expired_or_canceled_card).
    failure_reason = models.CharField(max_length=100, blank=True)
    # An admin's retry of a failed refund is a new refund (new idempotency key); one per failure.
    retry_of = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="retried_by")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self):
        return f"Refund {self.pk} of session {self.session_id} ({self.status})"
