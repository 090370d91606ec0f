from django.apps import AppConfig


class BackendConfig(AppConfig):
    name = "backend"
    label = "backend"
    verbose_name = "MyRoadmap payments"
    default_auto_field = "django.db.models.BigAutoField"
