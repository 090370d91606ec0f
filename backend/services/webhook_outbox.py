"""The outbox side of stored webhook events: which rows wait to be queued, claimed so that
several relays can run side by side.

The webhook's INSERT also does `pg_notify(NOTIFY_CHANNEL)` on PostgreSQL, so a relay
(backend/tasks/relay.py, a thread in every worker) wakes within a millisecond; the relay
claims rows here, publishes them, and puts them back here if the broker fails.
"""
from django.db import connection
from django.utils import timezone

from backend.models import WebhookEvent

NOTIFY_CHANNEL = "webhook_events"

_TABLE = WebhookEvent._meta.db_table
# One statement, so one round trip in autocommit: the rows are marked as they are read.
# SKIP LOCKED lets relays run side by side, each claiming rows the others are not.
_CLAIM = f"""
UPDATE {_TABLE} SET queued_at = %s
WHERE id IN (SELECT id FROM {_TABLE} WHERE status = 'received' AND queued_at IS NULL
             ORDER BY id LIMIT %s{{lock}})
RETURNING id, stripe_event_id, request_id
"""


def webhook_events_claim(*, limit: int) -> list[tuple[int, str, str]]:
    """Mark up to `limit` stored, handled events nobody has queued as queued, committed at
    once (autocommit). Returns (row id, Stripe event id, the delivery's request id) each."""
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM.format(lock=lock), [timezone.now(), limit])
        return cursor.fetchall()


def webhook_events_unclaim(*, row_ids: list[int]) -> None:
    """Put claimed rows back (their publish failed): the next relay pass takes them again."""
    WebhookEvent.objects.filter(id__in=row_ids).update(queued_at=None)
