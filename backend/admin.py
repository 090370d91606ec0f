import json

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.utils.html import format_html

from backend.errors import ApplicationError, RateLimited
from backend.models import (
    BlockedDate,
    Checkout,
    Expertise,
    Mentor,
    Notification,
    Payout,
    PayoutAccount,
    PayoutReversal,
    Refund,
    Session,
    SessionReschedule,
    User,
    WebhookEvent,
    WeeklyAvailability,
)
from backend.services.money import money_format
from backend.services.payouts import mentor_payout_balances, payouts_hold, payouts_release, payouts_retry
from backend.services.refunds import refund_admin_request, refunds_retry, session_refundable_amount
from backend.services.webhooks import webhook_events_retry

admin.site.site_header = "MyRoadmap admin"
admin.site.site_title = "MyRoadmap admin"


class RateLimitedAdminLoginForm(AdminAuthenticationForm):
    """The admin's login goes through the same backend as the pages and the API
    (services.auth.LoginRateLimitedBackend); past LOGIN_RATE_LIMIT it says so, and refuses
    even the right password until the window ends."""

    def clean(self):
        try:
            return super().clean()
        except RateLimited as exc:
            raise ValidationError(f"Too many failed logins; try again in {exc.retry_after} seconds.",
                                  code="rate_limited")


admin.site.login_form = RateLimitedAdminLoginForm


class LedgerAdmin(admin.ModelAdmin):
    """Rows of the payment ledger: only the payment flow creates them (an admin-made row would
    be a booking or refund Stripe never saw), and nobody deletes them. The money fields
    are read-only; money moves only through the permission-checked, logged actions.
    `editable_fields`, when given, are the only fields the change form may edit."""

    money_fields: list[str] = []
    editable_fields: list[str] | None = None

    def get_readonly_fields(self, request, obj=None):
        readonly = [*super().get_readonly_fields(request, obj), *self.money_fields]
        if self.editable_fields is not None:
            readonly += [field.name for field in self.model._meta.concrete_fields
                         if field.editable and field.name not in self.editable_fields and field.name not in readonly
                         and field.name not in (self.exclude or ())]  # shown formatted instead
        return readonly

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def log_action_outcomes(self, request, outcomes):
        """One admin-log entry (who, when, what) per object a money action touched."""
        for obj, message in outcomes:
            self.log_change(request, obj, message)


def _can_refund(request) -> bool:
    return request.user.has_perm("backend.refund_session")


def _money_column(field: str, description: str):
    """A list or detail column showing `field` (minor units) in the row's currency, as people read it."""
    @admin.display(description=description, ordering=field)
    def column(self, obj):
        return money_format(getattr(obj, field), obj.currency)
    column.__name__ = f"{field}_text"
    return column


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name", "time_zone"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]})]


@admin.register(Expertise)
class ExpertiseAdmin(admin.ModelAdmin):
    list_display = ["slug", "name"]
    search_fields = ["slug", "name"]


class WeeklyAvailabilityInline(admin.TabularInline):
    """Local wall-clock times in the mentor's schedule time zone."""

    model = WeeklyAvailability
    extra = 0


class BlockedDateInline(admin.TabularInline):
    model = BlockedDate
    extra = 0


@admin.register(Mentor)
class MentorAdmin(admin.ModelAdmin):
    inlines = [WeeklyAvailabilityInline, BlockedDateInline]
    list_display = ["name", "user", "hourly_rate_text", "is_active", "total_sessions", "total_earnings_text"]
    list_filter = ["is_active", "currency", "expertise"]
    search_fields = ["name", "headline", "user__email"]
    readonly_fields = ["total_sessions", "total_minutes", "total_earnings_text", "stats_updated_at"]
    exclude = ["total_earnings"]
    autocomplete_fields = ["user"]
    hourly_rate_text = _money_column("hourly_rate", "hourly rate")
    total_earnings_text = _money_column("total_earnings", "earnings")

    def get_readonly_fields(self, request, obj=None):
        # Whose mentor profile this is (and so whose earnings) is chosen once, when it is added.
        return [*super().get_readonly_fields(request, obj), *(["user"] if obj is not None else [])]


@admin.register(Checkout)
class CheckoutAdmin(LedgerAdmin):
    list_display = ["id", "mentor", "mentee", "scheduled_at", "amount_text", "status", "expires_at"]
    list_filter = ["status", "currency"]
    search_fields = ["stripe_checkout_session_id", "mentee__email", "mentor__name", "title"]
    date_hierarchy = "created_at"
    raw_id_fields = ["mentee", "mentor"]
    exclude = ["amount", "currency"]
    money_fields = ["amount_text", "status", "stripe_checkout_session_id", "checkout_url", "site_url"]
    amount_text = _money_column("amount", "amount")
    # A hold is Stripe's Checkout for one slot of one mentor: none of it changes by hand.
    editable_fields: list[str] = []


class SessionRescheduleInline(admin.TabularInline):
    """The moves of a session, for the record: made by its mentee or mentor, never here."""

    model = SessionReschedule
    fk_name = "session"
    extra = 0
    can_delete = False
    fields = readonly_fields = ["created_at", "previous_scheduled_at", "scheduled_at", "by_mentor", "requested_by"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Session)
class SessionAdmin(LedgerAdmin):
    inlines = [SessionRescheduleInline]
    list_display = ["id", "title", "mentor", "mentee", "scheduled_at", "status", "payment_status", "amount_text",
                    "refunded_amount_text"]
    list_filter = ["status", "payment_status", "is_disputed", "currency"]
    search_fields = ["title", "stripe_payment_id", "stripe_checkout_session_id", "mentee__email", "mentor__name"]
    date_hierarchy = "scheduled_at"
    raw_id_fields = ["mentor", "mentee", "checkout"]
    exclude = ["amount", "currency", "refunded_amount"]
    money_fields = ["checkout", "amount_text", "payment_status", "refunded_amount_text", "is_disputed",
                    "stripe_payment_id", "stripe_checkout_session_id", "cancelled_by", "cancel_reason", "reschedule_count",
                    "cancellation_policy", "cancellation_refund_amount", "dispute_lost_amount"]
    # Who, with whom, when and in which state are read-only too: setting "cancelled" here would
    # skip the refund and the emails, another mentor would take the earnings. Cancelling is the
    # "Refund" action (refund_session permission): the same service as a mentor's cancel.
    editable_fields = ["title", "description"]
    actions = ["refund_sessions"]
    amount_text = _money_column("amount", "amount")
    refunded_amount_text = _money_column("refunded_amount", "refunded")

    def has_refund_permission(self, request):
        return _can_refund(request)

    @admin.action(description="Refund (cancel and refund in full)\u2026", permissions=["refund"])
    def refund_sessions(self, request, queryset):
        """First a confirmation page (what each refund gives back, a required reason), then
        the refunds, each in the admin log with who, when, how much and why."""
        sessions = list(queryset.select_related("mentor", "mentee").order_by("pk"))
        reason = request.POST.get("reason", "").strip()
        if request.POST.get("post") == "yes" and reason:
            return self._refund_confirmed(request, sessions, reason)
        rows = [{"session": s, "refundable": money_format(session_refundable_amount(s), s.currency),
                 "refundable_amount": session_refundable_amount(s)} for s in sessions]
        return TemplateResponse(request, "admin/backend/session/refund_confirmation.html", {
            **self.admin_site.each_context(request),
            "title": "Refund the selected sessions?",
            "opts": self.model._meta,
            "rows": rows,
            "total": "; ".join(sorted({money_format(sum(r["refundable_amount"] for r in rows
                                                        if r["session"].currency == currency), currency)
                                       for currency in {r["session"].currency for r in rows}})),
            "reason": reason,
            "reason_missing": request.POST.get("post") == "yes" and not reason,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media,
        })

    def _refund_confirmed(self, request, sessions, reason: str):
        outcomes, started, refused = [], 0, []
        for session in sessions:
            try:
                refund = refund_admin_request(session_id=session.pk, staff=request.user, reason=reason)
            except ApplicationError as exc:
                refused.append(f"session {session.pk}: {exc.message}")
                outcomes.append((session, f"Refund refused ({exc.code}): {exc.message}. Reason given: {reason}"))
                continue
            if refund:
                started += 1
                outcomes.append((session, f"Refund {refund.pk} of {money_format(refund.amount, refund.currency)} "
                                          f"requested. Reason: {reason}"))
            else:
                outcomes.append((session, f"Refund asked; nothing left to refund. Reason: {reason}"))
        self.log_action_outcomes(request, outcomes)
        self.message_user(request, f"{started} refund(s) started; the rest had nothing left to refund.",
                          messages.SUCCESS if started else messages.WARNING)
        for problem in refused:
            self.message_user(request, problem, messages.ERROR)
        return None


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """Stripe's events as received: evidence, so nobody adds, edits or deletes them."""

    list_display = ["stripe_event_id", "type", "status", "attempts", "short_error", "received_at", "processed_at"]
    list_filter = ["status", "type", "livemode"]
    # payload: find an event by the Checkout Session, PaymentIntent or charge it is about.
    search_fields = ["stripe_event_id", "type", "last_error", "payload"]
    fields = ["stripe_event_id", "type", "status", "attempts", "next_attempt_at", "last_error", "api_version",
              "livemode", "received_at", "processed_at", "pretty_payload"]
    readonly_fields = ["stripe_event_id", "type", "api_version", "livemode", "attempts", "next_attempt_at",
                       "last_error", "received_at", "processed_at", "pretty_payload"]
    date_hierarchy = "received_at"
    actions = ["retry_selected"]

    @admin.display(description="error")
    def short_error(self, event):
        return event.last_error[:80]

    @admin.display(description="payload")
    def pretty_payload(self, event):
        return format_html("<pre>{}</pre>", json.dumps(event.payload, indent=2, sort_keys=True))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request):
        return request.user.has_perm("backend.retry_webhook_event")

    @admin.action(description="Retry selected", permissions=["retry"])
    def retry_selected(self, request, queryset):
        events = list(queryset)
        queued = webhook_events_retry(stripe_event_ids=[event.stripe_event_id for event in events])
        for event in events:
            self.log_change(request, event, f"Retry asked (status was {event.status})")
        self.message_user(request, f"{queued} event(s) queued again.", messages.SUCCESS if queued else messages.WARNING)


@admin.register(Refund)
class RefundAdmin(LedgerAdmin):
    list_display = ["id", "session", "amount_text", "status", "problem", "stripe_refund_id", "attempts", "created_at"]
    list_filter = ["status", "currency", "failure_reason"]
    search_fields = ["stripe_refund_id", "session__title", "session__stripe_payment_id"]
    raw_id_fields = ["session", "requested_by"]
    exclude = ["amount", "currency"]
    money_fields = ["session", "stripe_refund_id", "amount_text", "status", "failure_reason", "retry_of",
                    "requested_by", "attempts", "next_attempt_at", "last_error"]
    actions = ["retry_selected"]
    amount_text = _money_column("amount", "amount")

    @admin.display(description="why it failed")
    def problem(self, refund):
        """Stripe's own words: its failure_reason, or the error code it refused the request with."""
        return refund.failure_reason or refund.last_error[:120]

    def has_refund_permission(self, request):
        return _can_refund(request)

    @admin.action(description="Retry selected failed refunds (a new refund of what is left)", permissions=["refund"])
    def retry_selected(self, request, queryset):
        refunds = list(queryset)
        started = refunds_retry(refund_ids=[refund.pk for refund in refunds], staff=request.user)
        self.log_action_outcomes(request, [(refund, f"Retry asked (status was {refund.status})") for refund in refunds])
        self.message_user(request, f"{started} new refund(s) started; the rest had nothing left to refund "
                                   "or a refund already on its way.", messages.SUCCESS if started else messages.WARNING)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "kind", "recipient", "email", "sent_at", "refused_at"]
    list_filter = ["kind", "recipient", ("refused_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "session__title"]
    raw_id_fields = ["session"]


@admin.register(PayoutAccount)
class PayoutAccountAdmin(LedgerAdmin):
    """The mentors' Stripe connected accounts as Stripe last described them, and what each
    mentor is still owed or owes back."""

    list_display = ["mentor", "stripe_account_id", "payouts_enabled", "charges_enabled", "disabled_reason",
                    "balance_owed", "debt", "synced_at"]
    list_filter = ["payouts_enabled", "charges_enabled", "details_submitted", ("deauthorized_at", admin.EmptyFieldListFilter)]
    search_fields = ["stripe_account_id", "mentor__name", "mentor__user__email"]
    raw_id_fields = ["mentor"]
    money_fields = ["mentor", "stripe_account_id", "charges_enabled", "payouts_enabled", "details_submitted",
                    "requirements_due", "disabled_reason", "payouts_enabled_at", "deauthorized_at", "links_created",
                    "synced_at", "bank_payout_failure_code", "bank_payout_failure_message", "bank_payout_failed_at"]
    readonly_fields = ["balance_owed", "debt"]

    @admin.display(description="owed to the mentor")
    def balance_owed(self, account):
        return mentor_payout_balances(mentor_id=account.mentor_id, currency=account.mentor.currency)["owed"]

    @admin.display(description="debt (netted off next payouts)")
    def debt(self, account):
        return mentor_payout_balances(mentor_id=account.mentor_id, currency=account.mentor.currency)["debt"]


class PayoutReversalInline(admin.TabularInline):
    model = PayoutReversal
    extra = 0
    can_delete = False
    fields = ["amount", "status", "stripe_reversal_id", "reason", "failure_code", "attempts", "last_error",
              "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payout)
class PayoutAdmin(LedgerAdmin):
    """One per paid session. Money moves only through payouts_run; admins hold, release and
    retry, each behind its own permission and logged."""

    inlines = [PayoutReversalInline]
    list_display = ["id", "session", "mentor", "amount", "currency", "status", "payable_at", "paid_at",
                    "stripe_transfer_id", "amount_reversed", "short_error"]
    list_filter = ["status", "currency", "dispute", "held_by_admin", ("stripe_transfer_id", admin.EmptyFieldListFilter)]
    search_fields = ["stripe_transfer_id", "session__title", "mentor__name", "destination"]
    date_hierarchy = "payable_at"
    raw_id_fields = ["session", "mentor"]
    money_fields = ["session", "mentor", "status", "amount", "currency", "fee", "fee_percent", "debt_recovered",
                    "amount_reversed", "stripe_transfer_id", "stripe_charge_id", "destination", "payable_at",
                    "paid_at", "sending_since", "transfer_attempts", "refusals", "held_by_admin", "dispute",
                    "dispute_lost_amount", "last_error", "email_sent_at"]
    actions = ["hold_selected", "release_selected", "retry_selected"]

    @admin.display(description="error")
    def short_error(self, payout):
        return payout.last_error[:80]

    def has_hold_permission(self, request):
        return request.user.has_perm("backend.hold_payout")

    def has_release_permission(self, request):
        return request.user.has_perm("backend.release_payout")

    def has_retry_permission(self, request):
        return request.user.has_perm("backend.retry_payout")

    @admin.action(description="Hold selected (not sent until released)", permissions=["hold"])
    def hold_selected(self, request, queryset):
        held = payouts_hold(payout_ids=list(queryset.values_list("pk", flat=True)))
        self.log_action_outcomes(request, [(payout, "Held") for payout in held])
        self.message_user(request, f"{len(held)} payout(s) held; paid or sending ones can't be.",
                          messages.SUCCESS if held else messages.WARNING)

    @admin.action(description="Release selected holds", permissions=["release"])
    def release_selected(self, request, queryset):
        released = payouts_release(payout_ids=list(queryset.values_list("pk", flat=True)))
        self.log_action_outcomes(request, [(payout, "Released") for payout in released])
        self.message_user(request, f"{len(released)} payout(s) released.",
                          messages.SUCCESS if released else messages.WARNING)

    @admin.action(description="Retry selected failed payouts", permissions=["retry"])
    def retry_selected(self, request, queryset):
        retried = payouts_retry(payout_ids=list(queryset.values_list("pk", flat=True)))
        self.log_action_outcomes(request, [(payout, "Retry asked") for payout in retried])
        self.message_user(request, f"{len(retried)} failed payout(s) scheduled again.",
                          messages.SUCCESS if retried else messages.WARNING)


@admin.register(PayoutReversal)
class PayoutReversalAdmin(LedgerAdmin):
    list_display = ["id", "payout", "amount", "status", "failure_code", "stripe_reversal_id", "reason", "created_at"]
    list_filter = ["status", "failure_code"]
    search_fields = ["stripe_reversal_id", "payout__stripe_transfer_id", "payout__session__title"]
    raw_id_fields = ["payout"]
    money_fields = ["payout", "amount", "status", "stripe_reversal_id", "reason", "failure_code", "attempts",
                    "last_error", "email_sent_at"]


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    """The admin's log, where every money action is recorded (who, when, what, why): read-only."""

    list_display = ["action_time", "user", "content_type", "object_link", "action_flag", "message"]
    list_filter = ["action_flag", "content_type"]
    search_fields = ["object_repr", "change_message", "user__email"]
    date_hierarchy = "action_time"

    @admin.display(description="object")
    def object_link(self, entry):
        return entry.object_repr

    @admin.display(description="what")
    def message(self, entry):
        return entry.get_change_message()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
