"""The outbox side of stored webhook events: which rows wait to be queued, claimed so that
several relays can run side by side.

The webhook's INSERT also does `pg_notify(NOTIFY_CHANNEL)` on PostgreSQL, so a relay
(backend/tasks/relay.py, a thread in every worker) wakes within a millisecond; the relay
claims rows here, publishes them, and puts them back here if the broker fails.
"""
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from backend.models import WebhookEvent

NOTIFY_CHANNEL = "webhook_events"

_TABLE = WebhookEvent._meta.db_table
# A claim is a lease: the relay (or the sweep) that claimed a row publishes it at once, and a
# worker normally starts it within seconds. A row still `received` this long after it was
# claimed (the claimer died before publishing, the message was lost), or this long after its
# scheduled retry fell due, may be claimed again. Longer than the longest retry backoff
# (5 minutes), so a backlog in the broker is published again at most once per lease; a copy
# that finds the event done or in progress does nothing and counts no attempt.
CLAIM_LEASE = timedelta(minutes=6)

# One statement, so one round trip in autocommit: the rows are marked as they are read,
# oldest first. SKIP LOCKED lets relays run side by side, each claiming rows the others are not.
_CLAIM_NEW = f"""
UPDATE {_TABLE} SET queued_at = %s
WHERE id IN (SELECT id FROM {_TABLE} WHERE status = 'received' AND queued_at IS NULL
             ORDER BY id LIMIT %s{{lock}})
RETURNING id, stripe_event_id, request_id
"""
_CLAIM_STALE = f"""
UPDATE {_TABLE} SET queued_at = %s
WHERE id IN (SELECT id FROM {_TABLE} WHERE status = 'received' AND (
                 (queued_at IS NULL AND received_at < %s)
                 OR (queued_at < %s AND (next_attempt_at IS NULL OR next_attempt_at < %s)))
             ORDER BY id LIMIT %s{{lock}})
RETURNING id, stripe_event_id, request_id
"""


def _lock() -> str:
    return " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""


def webhook_events_claim(*, limit: int) -> list[tuple[int, str, str]]:
    """Mark up to `limit` stored, handled events nobody has queued as queued, oldest first,
    committed at once (autocommit). Returns (row id, Stripe event id, the delivery's request
    id) each."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_NEW.format(lock=_lock()), [timezone.now(), limit])
        return sorted(cursor.fetchall())  # RETURNING keeps no order: oldest (lowest id) first


def webhook_events_claim_stale(*, limit: int, unqueued_for: timedelta = timedelta(0)) -> list[tuple[int, str, str]]:
    """Claim again, oldest first, up to `limit` events whose claim lapsed (CLAIM_LEASE) with
    the row still `received`, and those stored over `unqueued_for` ago that nobody claimed;
    the same rows as `webhook_events_claim`."""
    now = timezone.now()
    lapsed = now - CLAIM_LEASE
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_STALE.format(lock=_lock()), [now, now - unqueued_for, lapsed, lapsed, limit])
        return sorted(cursor.fetchall())


def webhook_events_unclaim(*, row_ids: list[int]) -> None:
    """Put claimed rows back (their publish failed): the next relay pass takes them again."""
    WebhookEvent.objects.filter(id__in=row_ids).update(queued_at=None)
