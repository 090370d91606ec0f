from django.db import models


class Notification(models.Model):
    """One email sent about a session; unique per (session, kind, recipient) so retries never resend."""

    class Kind(models.TextChoices):
        BOOKED = "booked"
        REFUNDED = "refunded"
        CANCELLED = "cancelled"
        PAYMENT_FAILED = "payment_failed"

    class Recipient(models.TextChoices):
        MENTEE = "mentee"
        MENTOR = "mentor"

    session = models.ForeignKey("backend.Session", on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    recipient = models.CharField(max_length=10, choices=Recipient.choices)
    email = models.EmailField()
    sent_at = models.DateTimeField(null=True, blank=True)
    # The mail server refused the address for good (5xx): never retried, by the task or the sweep.
    refused_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["session", "kind", "recipient"], name="notification_once_per_kind")
        ]

    def __str__(self):
        return f"{self.kind} to {self.recipient} for session {self.session_id}"
