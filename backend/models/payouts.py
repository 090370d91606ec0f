from django.db import models


class PayoutAccount(models.Model):
    """A mentor's Stripe connected account, and our mirror of what Stripe says of it
    (from account.updated and reads of the account)."""

    mentor = models.OneToOneField("backend.Mentor", on_delete=models.PROTECT, related_name="payout_account")
    # Null only between our insert and Stripe's answer; the idempotency key comes from this row.
    stripe_account_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    requirements_due = models.JSONField(default=list, blank=True, help_text="Stripe's requirements.currently_due")
    disabled_reason = models.CharField(max_length=100, blank=True, help_text="Stripe's requirements.disabled_reason")
    # First time Stripe enabled payouts: an account disabled after that is "restricted", not "pending".
    payouts_enabled_at = models.DateTimeField(null=True, blank=True)
    # The mentor disconnected our platform (account.application.deauthorized): nothing is sent any more.
    deauthorized_at = models.DateTimeField(null=True, blank=True)
    # Account links made so far: each link's idempotency key counts them.
    links_created = models.PositiveIntegerField(default=0)
    # When the mirror was last brought up to date from Stripe (an event, or a read).
    synced_at = models.DateTimeField(null=True, blank=True)
    # The last payout of the account's balance to the mentor's bank that failed (payout.failed).
    bank_payout_failure_code = models.CharField(max_length=100, blank=True)
    bank_payout_failure_message = models.CharField(max_length=500, blank=True)
    bank_payout_failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Payout account {self.stripe_account_id or '(being created)'} of mentor {self.mentor_id}"

    @property
    def ready(self) -> bool:
        """Stripe accepts transfers to it now."""
        return bool(self.stripe_account_id) and self.payouts_enabled and self.deauthorized_at is None


class Payout(models.Model):
    """What a session earns its mentor: at most one Stripe Transfer, then reversals of it.

    `amount` is the transfer's amount (the mentor's share less any debt it recovers); until
    the transfer is sent it is the current estimate, and it is frozen once `sending_since`
    is set, so every retry sends Stripe the same request under the same idempotency key.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"  # not payable yet (the session has not ended + the delay), or being sent
        WAITING = "waiting"  # payable, but the mentor's account can't receive transfers yet
        HELD = "held"  # a dispute is open, or an admin holds it
        PAID = "paid"
        PARTIALLY_REVERSED = "partially_reversed"
        REVERSED = "reversed"
        FAILED = "failed"  # Stripe refused the transfer; an admin retries it
        CANCELLED = "cancelled"  # nothing is owed: cancelled, refunded in full, or a dispute lost

    class Dispute(models.TextChoices):
        NONE = "none"
        OPEN = "open"
        WON = "won"
        LOST = "lost"

    session = models.OneToOneField("backend.Session", on_delete=models.PROTECT, related_name="payout")
    mentor = models.ForeignKey("backend.Mentor", on_delete=models.PROTECT, related_name="payouts")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    amount = models.PositiveIntegerField(default=0, help_text="Minor units: the transfer (estimated until sent)")
    currency = models.CharField(max_length=3)
    fee = models.PositiveIntegerField(default=0, help_text="Minor units: the platform's fee")
    # PLATFORM_FEE_PERCENT when the transfer was sent: its reversals use the same one.
    fee_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    debt_recovered = models.PositiveIntegerField(default=0, help_text="Minor units of earlier debts netted off")
    amount_reversed = models.PositiveIntegerField(default=0, help_text="Minor units reversed at Stripe")
    stripe_transfer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, help_text="The transfer's source_transaction")
    destination = models.CharField(max_length=255, blank=True, help_text="The connected account paid")
    # When the session ends plus PAYOUT_DELAY_HOURS: recomputed by payouts_run (sessions move).
    payable_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Set when the transfer's amount is frozen and sending starts; cleared when it is recorded or refused.
    sending_since = models.DateTimeField(null=True, blank=True)
    transfer_attempts = models.PositiveIntegerField(default=0)
    # Definite refusals by Stripe so far: a request after one is a new one (new idempotency key).
    refusals = models.PositiveIntegerField(default=0)
    held_by_admin = models.BooleanField(default=False)
    dispute = models.CharField(max_length=10, choices=Dispute.choices, default=Dispute.NONE)
    dispute_lost_amount = models.PositiveIntegerField(default=0, help_text="Minor units a lost dispute took")
    last_error = models.TextField(blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("hold_payout", "Can hold payouts"),
            ("release_payout", "Can release held payouts"),
            ("retry_payout", "Can retry failed payouts"),
        ]
        indexes = [
            models.Index(fields=["mentor", "-created_at", "-id"], name="payouts_mentor_newest"),
            models.Index(fields=["status", "payable_at"], name="payouts_status_payable"),
        ]

    def __str__(self):
        return f"Payout {self.pk} of session {self.session_id} ({self.status})"


class PayoutReversal(models.Model):
    """Money taken back from a paid payout (a refund or a lost dispute after the transfer).

    `requested`: our row, Stripe not yet (or not surely) asked. `failed`: Stripe refused it
    (the mentor's balance was short) or it was more than the transfer held: a debt of the
    mentor's, which the next payouts net off (Payout.debt_recovered).
    """

    class Status(models.TextChoices):
        REQUESTED = "requested"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="reversals")
    amount = models.PositiveIntegerField(help_text="Minor units")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    stripe_reversal_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="payout_reversal_amount_positive")]

    def __str__(self):
        return f"Reversal {self.pk} of payout {self.payout_id} ({self.status})"
