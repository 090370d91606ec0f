"""Issue 9: the install id (one per database), when an event's retry is due, and the
beat job that applies the pending-debit-at-start policy."""
import uuid

from django.db import migrations, models


def install_and_schedule(apps, schema_editor):
    apps.get_model("backend", "Installation").objects.get_or_create(pk=1, defaults={"install_id": uuid.uuid4().hex})
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(name="sessions_unpaid_at_start",
                                       defaults={"task": "sessions_unpaid_at_start", "interval": every_minute})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="sessions_unpaid_at_start").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("backend", "0011_refund_failures"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="Installation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("install_id", models.CharField(max_length=32, unique=True)),
                ("stripe_events_read_until", models.BigIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(install_and_schedule, unschedule),
    ]
