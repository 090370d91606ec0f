from django.conf import settings
from django.db import models


class Session(models.Model):
    """A booked mentorship session, created only from a paid (or paying) Checkout."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        CANCELLED = "cancelled"
        COMPLETED = "completed"

    class PaymentStatus(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"
        REFUNDED = "refunded"

    mentor = models.ForeignKey("backend.Mentor", on_delete=models.PROTECT, related_name="sessions")
    mentee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="booked_sessions")
    checkout = models.OneToOneField("backend.Checkout", on_delete=models.PROTECT, null=True, blank=True, related_name="session")
    title = models.CharField(max_length=200)
    # max_length on a TextField bounds input only (forms, API schemas), not the column.
    description = models.TextField(blank=True, max_length=2000)
    scheduled_at = models.DateTimeField()
    duration_minutes = models.PositiveIntegerField()
    # Stored (not computed) so PostgreSQL can index the range for the overlap constraint.
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    payment_status = models.CharField(max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    amount = models.PositiveIntegerField(help_text="Minor units")
    currency = models.CharField(max_length=3)
    refunded_amount = models.PositiveIntegerField(default=0, help_text="Minor units refunded so far")
    is_disputed = models.BooleanField(default=False)
    stripe_payment_id = models.CharField(max_length=255, unique=True, null=True, blank=True, help_text="PaymentIntent id")
    stripe_checkout_session_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "sessions"
        ordering = ["-created_at", "-id"]
        # The admin's money actions ("Refund", retrying refunds) ask for it; viewing does not.
        permissions = [("refund_session", "Can refund sessions and retry refunds")]
        indexes = [
            # The session lists, newest first.
            models.Index(fields=["mentee", "-created_at", "-id"], name="sessions_mentee_newest"),
            models.Index(fields=["mentor", "-created_at", "-id"], name="sessions_mentor_newest"),
            # The booking overlap check.
            models.Index(fields=["mentor", "status", "scheduled_at"], name="sessions_mentor_slot"),
            # mentor_stats_recompute reads only this index (PostgreSQL; a plain index elsewhere).
            models.Index(
                fields=["mentor"],
                include=["id", "duration_minutes", "amount", "refunded_amount"],
                condition=models.Q(payment_status="paid") & ~models.Q(status="cancelled"),
                name="sessions_mentor_paid_stats",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="session_amount_positive"),
            models.CheckConstraint(condition=models.Q(duration_minutes__gt=0), name="session_duration_positive"),
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("scheduled_at")), name="session_ends_after_start"),
            # The no-overlap exclusion constraint is PostgreSQL-only; see migration 0002.
        ]

    def __str__(self):
        return f"{self.title} ({self.scheduled_at:%Y-%m-%d %H:%M})"
