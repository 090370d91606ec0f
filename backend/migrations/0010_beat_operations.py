from django.db import migrations

SCHEDULES = {"operations_alerts_check": (5, "minutes"), "webhook_events_prune": (1, "days")}


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, (every, period) in SCHEDULES.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": name, "interval": interval})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [("backend", "0009_beat_payments_audit")]
    operations = [migrations.RunPython(schedule, unschedule)]
