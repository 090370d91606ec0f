from django.db import models


class WeeklyAvailability(models.Model):
    """One window of a mentor's weekly schedule, in local wall-clock time of the mentor's
    `schedule_time_zone`: `weekday` from `start_time` to `end_time`.

    Expanded with zoneinfo on each calendar day, so 09:00-12:00 stays 09:00-12:00 local
    across daylight-saving changes. An `end_time` at or before `start_time` ends the next
    day (22:00-02:00; 00:00-00:00 is the whole day). A mentor with no windows is bookable
    at any time; with windows, only inside them.
    """

    class Weekday(models.IntegerChoices):
        MONDAY = 0
        TUESDAY = 1
        WEDNESDAY = 2
        THURSDAY = 3
        FRIDAY = 4
        SATURDAY = 5
        SUNDAY = 6

    mentor = models.ForeignKey("backend.Mentor", on_delete=models.CASCADE, related_name="weekly_availability")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, help_text="Of the window's start, local")
    start_time = models.TimeField(help_text="Local time in the mentor's schedule time zone")
    end_time = models.TimeField(help_text="Local; at or before start_time: the window ends the next day")

    class Meta:
        ordering = ["mentor", "weekday", "start_time"]
        verbose_name_plural = "weekly availability"
        constraints = [
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="availability_weekday_valid"),
        ]

    def __str__(self):
        overnight = " (next day)" if self.end_time <= self.start_time else ""
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}-{self.end_time:%H:%M}{overnight}"


class BlockedDate(models.Model):
    """A day off (a holiday): the whole local day, in the mentor's schedule time zone, is not
    bookable, whatever the weekly windows say. Sessions already booked on it stay booked."""

    mentor = models.ForeignKey("backend.Mentor", on_delete=models.CASCADE, related_name="blocked_dates")
    date = models.DateField()

    class Meta:
        ordering = ["mentor", "date"]
        constraints = [models.UniqueConstraint(fields=["mentor", "date"], name="blocked_date_once_per_mentor")]

    def __str__(self):
        return f"{self.date:%Y-%m-%d} blocked"
