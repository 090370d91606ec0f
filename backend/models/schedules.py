from django.db import models


class WeeklyAvailability(models.Model):
    """One window of a mentor's weekly schedule, in UTC: `weekday` from `start_time` to `end_time`.

    A mentor with no windows is bookable at any time; with windows, only inside them.
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
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField(help_text="UTC")
    end_time = models.TimeField(help_text="UTC, after start_time (a window ends by midnight)")

    class Meta:
        ordering = ["mentor", "weekday", "start_time"]
        verbose_name_plural = "weekly availability"
        constraints = [
            models.CheckConstraint(condition=models.Q(end_time__gt=models.F("start_time")), name="availability_ends_after_start"),
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="availability_weekday_valid"),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}-{self.end_time:%H:%M} UTC"
