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

    class CancelledBy(models.TextChoices):
        MENTEE = "mentee"
        MENTOR = "mentor"
        ADMIN = "admin"  # the admin's "Refund" action
        STRIPE = "stripe"  # refunded in full at Stripe (the Dashboard)
        SYSTEM = "system"  # the pending-debit policy: the payment had not cleared at the start

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
    # Moves so far (SessionReschedule rows): the calendar invite's SEQUENCE, so calendars
    # move the event rather than add one.
    reschedule_count = models.PositiveIntegerField(default=0)
    # The mentee's cancellation tiers, copied from settings.CANCELLATION_POLICY when the
    # session is paid: [{"min_hours_before": 24, "refund_percent": 100}, ...]. Changing the
    # settings never changes what a booking promised.
    cancellation_policy = models.JSONField(null=True, blank=True)
    # What a cancellation refunds (minor units): set when it is cancelled; null is everything.
    cancellation_refund_amount = models.PositiveIntegerField(null=True, blank=True)
    # What the customer's bank took back when a dispute was lost (Stripe's dispute amount).
    dispute_lost_amount = models.PositiveIntegerField(default=0, help_text="Minor units lost in a dispute")
    # Who cancelled a booked session, and the reason they gave, shown and emailed to the
    # other party. Empty for a payment that was never booked (the slot was lost meanwhile).
    cancelled_by = models.CharField(max_length=10, choices=CancelledBy.choices, blank=True)
    cancel_reason = models.TextField(blank=True, max_length=500)
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
                include=["id", "duration_minutes", "amount", "refunded_amount", "dispute_lost_amount"],
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


class SessionReschedule(models.Model):
    """One move of a paid session to another slot: the payment stays, the slot changes."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="reschedules")
    previous_scheduled_at = models.DateTimeField()
    previous_ends_at = models.DateTimeField()
    scheduled_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    by_mentor = models.BooleanField(help_text="Moved by the mentor (else by the mentee)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "session_reschedules"
        ordering = ["session", "created_at", "id"]

    def __str__(self):
        return f"session {self.session_id}: {self.previous_scheduled_at:%Y-%m-%d %H:%M} -> {self.scheduled_at:%Y-%m-%d %H:%M}"
