from django.apps import AppConfig


class BackendConfig(AppConfig):
    name = "backend"
    label = "backend"
    verbose_name = "MyRoadmap payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from backend.observability import celery  # noqa: F401  (connects the Celery signal handlers)
