from django.urls import path

from backend.web import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("mentors", views.mentors, name="mentors"),
    path("mentors/<int:mentor_id>", views.mentor_detail, name="mentor"),
    path("sessions", views.sessions, name="sessions"),
    path("sessions/<int:session_id>/cancel", views.session_cancel_page, name="session_cancel"),
    path("sessions/<int:session_id>.ics", views.session_calendar, name="session_ics"),
    path("login", views.login_page, name="login"),
    path("register", views.register_page, name="register"),
    path("logout", views.logout_page, name="logout"),
]
