"""Beat schedule rows live in django-celery-beat's tables so admins can edit them."""
from django.db import migrations


def schedule_sessions_complete(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.get_or_create(
        name="sessions_complete", defaults={"task": "sessions_complete", "interval": every_hour}
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="sessions_complete").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("backend", "0002_sessions_no_overlap"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(schedule_sessions_complete, unschedule)]
