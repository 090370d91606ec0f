from django.db import models


class WebhookEvent(models.Model):
    """A Stripe event as received: the idempotency record (unique event id) and the outbox."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"

    stripe_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    api_version = models.CharField(max_length=50, blank=True)
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When the scheduled retry is due: the sweep leaves the event to it until then.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the outbox relay handed it to the broker; null = stored, not yet queued.
    queued_at = models.DateTimeField(null=True, blank=True)
    # The delivery's request id, which the relay puts in the task's log context header. A
    # database default: an INSERT that does not name it (a web process of the release
    # before, during a rolling deploy) still stores the event.
    request_id = models.CharField(max_length=64, blank=True, db_default="")

    class Meta:
        ordering = ["-received_at"]
        permissions = [("retry_webhook_event", "Can retry webhook events")]
        indexes = [
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["type"]),
            # The relay's claim: only the few rows waiting to be queued are in it.
            models.Index(fields=["id"], name="webhook_events_to_queue",
                         condition=models.Q(status="received", queued_at__isnull=True)),
        ]

    def __str__(self):
        return f"{self.stripe_event_id} {self.type} ({self.status})"
