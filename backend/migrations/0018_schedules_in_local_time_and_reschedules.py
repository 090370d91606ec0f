"""Issue 22: weekly windows in local time of the mentor's zone, blocked dates, rescheduling,
and cancellation tiers snapshotted on each paid session.

Existing windows were UTC: they keep their values with schedule_time_zone "UTC" (the
default), which is exactly what they meant. Paid sessions from before get the policy they
were sold under: a full refund up to REFUND_CUTOFF_HOURS before the start.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def policy_of_earlier_bookings(apps, schema_editor):
    Session = apps.get_model("backend", "Session")
    Session.objects.filter(cancellation_policy__isnull=True, payment_status__in=["paid", "refunded"]).update(
        cancellation_policy=[{"min_hours_before": settings.REFUND_CUTOFF_HOURS, "refund_percent": 100}])


class Migration(migrations.Migration):

    dependencies = [
        ('backend', '0017_holds_per_address_and_email_verification'),
    ]

    operations = [
        migrations.CreateModel(
            name='BlockedDate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('date', models.DateField()),
            ],
            options={
                'ordering': ['mentor', 'date'],
            },
        ),
        migrations.CreateModel(
            name='SessionReschedule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('previous_scheduled_at', models.DateTimeField()),
                ('previous_ends_at', models.DateTimeField()),
                ('scheduled_at', models.DateTimeField()),
                ('ends_at', models.DateTimeField()),
                ('by_mentor', models.BooleanField(help_text='Moved by the mentor (else by the mentee)')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'db_table': 'session_reschedules',
                'ordering': ['session', 'created_at', 'id'],
            },
        ),
        migrations.RemoveConstraint(
            model_name='notification',
            name='notification_once_per_kind',
        ),
        migrations.RemoveConstraint(
            model_name='weeklyavailability',
            name='availability_ends_after_start',
        ),
        migrations.AddField(
            model_name='mentor',
            name='schedule_time_zone',
            field=models.CharField(default='UTC', max_length=64),
        ),
        migrations.AddField(
            model_name='notification',
            name='revision',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='session',
            name='cancellation_policy',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='session',
            name='cancellation_refund_amount',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='session',
            name='reschedule_count',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='notification',
            name='kind',
            field=models.CharField(choices=[('booked', 'Booked'), ('refunded', 'Refunded'), ('cancelled', 'Cancelled'), ('payment_failed', 'Payment Failed'), ('rescheduled', 'Rescheduled')], max_length=20),
        ),
        migrations.AlterField(
            model_name='weeklyavailability',
            name='end_time',
            field=models.TimeField(help_text='Local; at or before start_time: the window ends the next day'),
        ),
        migrations.AlterField(
            model_name='weeklyavailability',
            name='start_time',
            field=models.TimeField(help_text="Local time in the mentor's schedule time zone"),
        ),
        migrations.AlterField(
            model_name='weeklyavailability',
            name='weekday',
            field=models.PositiveSmallIntegerField(choices=[(0, 'Monday'), (1, 'Tuesday'), (2, 'Wednesday'), (3, 'Thursday'), (4, 'Friday'), (5, 'Saturday'), (6, 'Sunday')], help_text="Of the window's start, local"),
        ),
        migrations.AddConstraint(
            model_name='notification',
            constraint=models.UniqueConstraint(fields=('session', 'kind', 'recipient', 'revision'), name='notification_once_per_kind_and_revision'),
        ),
        migrations.AddField(
            model_name='blockeddate',
            name='mentor',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='blocked_dates', to='backend.mentor'),
        ),
        migrations.AddField(
            model_name='sessionreschedule',
            name='requested_by',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='sessionreschedule',
            name='session',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reschedules', to='backend.session'),
        ),
        migrations.AddConstraint(
            model_name='blockeddate',
            constraint=models.UniqueConstraint(fields=('mentor', 'date'), name='blocked_date_once_per_mentor'),
        ),
        migrations.RunPython(policy_of_earlier_bookings, migrations.RunPython.noop),
    ]
