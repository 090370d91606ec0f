from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from backend.models import Checkout, Expertise, Mentor, Notification, Refund, Session, User, WebhookEvent


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


@admin.register(Mentor)
class MentorAdmin(admin.ModelAdmin):
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


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["stripe_event_id", "type", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "type", "livemode"]
    search_fields = ["stripe_event_id", "type", "last_error"]
    readonly_fields = ["stripe_event_id", "type", "api_version", "livemode", "payload", "received_at", "processed_at"]
    date_hierarchy = "received_at"


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "amount", "currency", "status", "stripe_refund_id", "attempts", "created_at"]
    list_filter = ["status", "currency"]
    search_fields = ["stripe_refund_id", "session__title", "session__stripe_payment_id"]
    raw_id_fields = ["session", "requested_by"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "kind", "recipient", "email", "sent_at"]
    list_filter = ["kind", "recipient"]
    search_fields = ["email", "session__title"]
    raw_id_fields = ["session"]
