"""The payment safety nets on beat's database schedule (editable in the admin)."""
from django.db import migrations

SCHEDULES = [
    # name == task name, every, period
    ("payments_reconcile", 10, "minutes"),
    ("webhook_events_sweep", 1, "minutes"),
    ("checkout_holds_expire", 1, "minutes"),
]


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, every, period in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": name, "interval": interval})


def unschedule(apps, schema_editor):
    names = [name for name, _, _ in SCHEDULES]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [("backend", "0003_beat_sessions_complete")]
    operations = [migrations.RunPython(schedule, unschedule)]
