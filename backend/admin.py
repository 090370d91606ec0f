import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from backend.models import Checkout, Expertise, Mentor, Notification, Refund, Session, User, WebhookEvent, WeeklyAvailability
from backend.services.refunds import refund_admin_request, refunds_retry
from backend.services.webhooks import webhook_events_retry


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]})]


@admin.register(Expertise)
class ExpertiseAdmin(admin.ModelAdmin):
    list_display = ["slug", "name"]
    search_fields = ["slug", "name"]


class WeeklyAvailabilityInline(admin.TabularInline):
    model = WeeklyAvailability
    extra = 0


@admin.register(Mentor)
class MentorAdmin(admin.ModelAdmin):
    inlines = [WeeklyAvailabilityInline]
    list_display = ["name", "user", "hourly_rate", "currency", "is_active", "total_sessions", "total_earnings"]
    list_filter = ["is_active", "currency", "expertise"]
    search_fields = ["name", "headline", "user__email"]
    readonly_fields = ["total_sessions", "total_minutes", "total_earnings", "stats_updated_at"]
    autocomplete_fields = ["user"]


@admin.register(Checkout)
class CheckoutAdmin(admin.ModelAdmin):
    list_display = ["id", "mentor", "mentee", "scheduled_at", "amount", "currency", "status", "expires_at"]
    list_filter = ["status", "currency"]
    search_fields = ["stripe_checkout_session_id", "mentee__email", "mentor__name", "title"]
    date_hierarchy = "created_at"
    raw_id_fields = ["mentee", "mentor"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "mentor", "mentee", "scheduled_at", "status", "payment_status", "amount", "currency"]
    list_filter = ["status", "payment_status", "is_disputed", "currency"]
    search_fields = ["title", "stripe_payment_id", "stripe_checkout_session_id", "mentee__email", "mentor__name"]
    date_hierarchy = "scheduled_at"
    raw_id_fields = ["mentor", "mentee", "checkout"]
    actions = ["refund_sessions"]

    @admin.action(description="Refund (cancel and refund in full)")
    def refund_sessions(self, request, queryset):
        refunds = [refund_admin_request(session_id=s.pk, staff=request.user) for s in queryset]
        started = sum(1 for r in refunds if r)
        self.message_user(request, f"{started} refund(s) started; the rest had nothing left to refund.")


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
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

    @admin.action(description="Retry selected")
    def retry_selected(self, request, queryset):
        queued = webhook_events_retry(stripe_event_ids=list(queryset.values_list("stripe_event_id", flat=True)))
        self.message_user(request, f"{queued} event(s) queued again.", messages.SUCCESS if queued else messages.WARNING)


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "amount", "currency", "status", "failure_reason", "stripe_refund_id", "attempts",
                    "created_at"]
    list_filter = ["status", "currency", "failure_reason"]
    search_fields = ["stripe_refund_id", "session__title", "session__stripe_payment_id"]
    raw_id_fields = ["session", "requested_by"]
    actions = ["retry_selected"]

    @admin.action(description="Retry selected failed refunds (a new refund of what is left)")
    def retry_selected(self, request, queryset):
        started = refunds_retry(refund_ids=list(queryset.values_list("pk", flat=True)), staff=request.user)
        self.message_user(request, f"{started} new refund(s) started; the rest had nothing left to refund "
                                   "or a refund already on its way.", messages.SUCCESS if started else messages.WARNING)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "kind", "recipient", "email", "sent_at", "refused_at"]
    list_filter = ["kind", "recipient", ("refused_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "session__title"]
    raw_id_fields = ["session"]
