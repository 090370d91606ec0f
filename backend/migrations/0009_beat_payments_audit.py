from django.db import migrations


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    # Daily at 04:30 UTC, a quiet hour; editable in the admin.
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="4", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC")
    PeriodicTask.objects.get_or_create(name="payments_audit", defaults={"task": "payments_audit", "crontab": daily})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="payments_audit").delete()


class Migration(migrations.Migration):
    dependencies = [("backend", "0008_mentor_schedules")]
    operations = [migrations.RunPython(schedule, unschedule)]
