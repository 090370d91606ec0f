from django.urls import path

from backend.web import account, mentor_pages, reschedule, views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("mentors", views.mentors, name="mentors"),
    path("mentors/<int:mentor_id>", views.mentor_detail, name="mentor"),
    path("sessions", views.sessions, name="sessions"),
    path("sessions/<int:session_id>/cancel", views.session_cancel_page, name="session_cancel"),
    path("sessions/<int:session_id>.ics", views.session_calendar, name="session_ics"),
    path("sessions/<int:session_id>/reschedule", reschedule.session_reschedule_page, name="session_reschedule"),
    path("mentor/bookings", mentor_pages.mentor_bookings_page, name="mentor_bookings"),
    path("mentor/availability", mentor_pages.mentor_availability_page, name="mentor_availability"),
    path("mentor/profile", mentor_pages.mentor_profile_page, name="mentor_profile"),
    path("account", account.account_page, name="account"),
    path("mentor/payouts", views.mentor_payouts, name="mentor_payouts"),
    path("mentor/payouts/onboarding", views.mentor_payouts_onboarding, name="mentor_payouts_onboarding"),
    path("mentor/payouts/onboarding/refresh", views.mentor_payouts_onboarding, name="mentor_payouts_refresh"),
    path("holds/<str:cs_id>/cancel", views.checkout_hold_cancel_page, name="hold_cancel"),
    path("login", views.login_page, name="login"),
    path("register", views.register_page, name="register"),
    path("logout", views.logout_page, name="logout"),
    path("verify-email", views.verify_email_send, name="verify_email_send"),
    path("verify-email/<str:uidb64>/<str:token>", views.verify_email_confirm, name="verify_email"),
    # Django's own password views, in the site's templates.
    path("password-reset", views.PasswordResetPage.as_view(), name="password_reset"),
    path("password-reset/sent", views.password_reset_done, name="password_reset_done"),
    path("password-reset/<str:uidb64>/<str:token>", views.password_reset_confirm, name="password_reset_confirm"),
    path("password-reset/done", views.password_reset_complete, name="password_reset_complete"),
    path("password-change", views.password_change, name="password_change"),
    path("password-change/done", views.password_change_done, name="password_change_done"),
]
