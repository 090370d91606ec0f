from django.db import models


class Installation(models.Model):
    """One row per database (pk=1): who we are to Stripe, and how far reconcile has read.

    `install_id` namespaces our idempotency keys and tags our Stripe metadata, so a reset
    database (or a second environment on the same Stripe account) never replays another's
    `checkout:1`, and events about payments that are not ours are recognised as such.
    """

    install_id = models.CharField(max_length=32, unique=True)
    # Unix time (Stripe's `created`) up to which Stripe's event list has been read in full.
    stripe_events_read_until = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Installation {self.install_id}"
