from django.db import migrations


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(name="followups_sweep", defaults={"task": "followups_sweep", "interval": every_minute})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="followups_sweep").delete()


class Migration(migrations.Migration):
    dependencies = [("backend", "0004_beat_payment_schedules")]
    operations = [migrations.RunPython(schedule, unschedule)]
