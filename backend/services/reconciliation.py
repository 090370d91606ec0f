"""Beat's safety nets: whatever a webhook missed, these find (flows 7 and 8).

- payments_reconcile: Stripe's event list against our table, and open Checkouts
  against their Stripe sessions.
- webhook_events_sweep: events stored but never (or no longer) being processed.
- checkout_holds_expire: holds whose time is up.
- followups_sweep: follow-up work whose queuing was lost (the broker was down).
"""
import itertools
import logging
import time
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import PaymentProviderError, PaymentProviderUnavailable
from backend.models import Checkout, Installation, Mentor, Notification, Refund, Session, WebhookEvent
from backend.services.dispatch import (
    admin_alert_on_commit,
    notification_on_commit,
    refund_execute_on_commit,
    stats_recompute_on_commit,
)
from backend.services.fulfilment import checkout_expire, checkout_fulfil
from backend.services.installation import installation
from backend.services.webhook_outbox import webhook_events_claim_stale, webhook_events_unclaim
from backend.services.webhooks import (
    EVENT_HANDLERS,
    webhook_event_enqueue,
    webhook_event_store,
    webhook_events_store_many,
)

logger = logging.getLogger(__name__)

RECONCILE_WINDOW = timedelta(days=3)  # the first scan, or `reconcile_payments --since`
# A scan that caught up re-reads this much before its mark the next time: an event listed a
# little late (Stripe's list is not strictly in order of arrival) is still seen.
EVENTS_OVERLAP_SECONDS = 5 * 60
EVENTS_PAGE = 100  # Stripe's largest page
EVENTS_SAVED_EVERY = 20  # events stored between two saves of the position
STUCK_RECEIVED_AFTER = timedelta(minutes=1)


def payments_reconcile(*, since: timedelta | None = None, time_budget: float | None = None) -> dict[str, int]:
    """Settle open Checkouts whose Stripe session has moved on, then ingest the handled
    events Stripe has that our table lacks. Returns what it fixed, how many items failed
    (each is logged and skipped, so one bad item never stops the rest) and whether the
    event list was read to its end (`caught_up`).

    Events are read oldest first, a page at a time, stored a few at a time, and the
    position is saved after each few: a backlog too large for one run (an outage, a slow
    Stripe) is read on by the next run from where this one stopped, and the oldest events,
    the ones most overdue, come first. A run stops by itself once `time_budget` seconds
    have passed; the task's soft time limit (a Stripe call that overran the budget) stops it
    cleanly too. `since` reads that window instead, and leaves the saved progress alone.
    """
    fixed = {"events_ingested": 0, "checkouts_settled": 0, "errors": 0, "caught_up": 0}
    deadline = None if time_budget is None else time.monotonic() + time_budget
    try:
        _open_checkouts_settle(fixed, since=since)
        fixed["caught_up"] = int(_events_catch_up(fixed, since=since, deadline=deadline))
        if not fixed["caught_up"] and deadline is not None and time.monotonic() >= deadline:
            logger.warning("reconcile: stopped, its %.0f s are up; progress is saved, the next run goes on",
                           time_budget)
    except SoftTimeLimitExceeded:
        logger.warning("reconcile: stopped at the task's time limit; progress is saved, the next run goes on")
    logger.info("reconcile: %s", fixed)
    return fixed


def _open_checkouts_settle(fixed: dict[str, int], *, since: timedelta | None) -> None:
    open_checkouts = Checkout.objects.filter(status=Checkout.Status.OPEN, stripe_checkout_session_id__isnull=False,
                                             created_at__gte=timezone.now() - (since or RECONCILE_WINDOW))
    for checkout_id in open_checkouts.values_list("pk", flat=True).iterator():
        try:
            if checkout_settle_from_stripe(checkout_id=checkout_id):
                fixed["checkouts_settled"] += 1
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            logger.exception("reconcile: checkout %s could not be settled; next scan tries again", checkout_id)
            fixed["errors"] += 1


def _events_catch_up(fixed: dict[str, int], *, since: timedelta | None, deadline: float | None = None) -> bool:
    """Walk Stripe's event list forward in time from where the last run left it, storing
    what we lack; True when the walk reached the newest event."""
    types = sorted(EVENT_HANDLERS)
    state = installation()
    saves = since is None  # a manual window leaves the beat runs' progress alone
    try:
        if saves and state.stripe_events_cursor:
            cursor = state.stripe_events_cursor  # the last run stopped mid-way: go on after it
            logger.info("reconcile: going on after %s (read up to %s)", cursor, state.stripe_events_read_until)
        else:
            if saves and state.stripe_events_read_until is not None:
                start = state.stripe_events_read_until - EVENTS_OVERLAP_SECONDS
            else:
                start = int(time.time() - (since or RECONCILE_WINDOW).total_seconds())
            cursor, first = _events_start(types, start)
            if cursor is None:
                return True  # no event of ours since `start`
            if first and not _events_store_saving(first, fixed, saves=saves):
                return False
        for pages in itertools.count():
            if pages and deadline is not None and time.monotonic() >= deadline:
                return False  # out of time, after one page at least: every run gets further
            # ending_before: the page of events just newer than the cursor, newest first.
            page, more = stripe_gateway.events_page(types=types, ending_before=cursor, limit=EVENTS_PAGE)
            page.reverse()
            if not _events_store_saving(page, fixed, saves=saves):
                return False  # one could not be stored: the next run starts from it
            if not more:
                if saves:
                    _events_progress_save(cursor=None, read_until=None)  # caught up
                return True
            cursor = page[-1]["id"]
    except PaymentProviderError as exc:
        if exc.code == "resource_missing" and saves and state.stripe_events_cursor:
            # The saved position is older than Stripe keeps events (30 days): start again from the mark.
            logger.warning("reconcile: Stripe no longer has event %s; reading from the mark", state.stripe_events_cursor)
            _events_progress_save(cursor=None, read_until=None)
            return _events_catch_up(fixed, since=since, deadline=deadline)
        logger.exception("reconcile: Stripe refused the event list; progress is saved, the next run goes on")
        fixed["errors"] += 1
    except PaymentProviderUnavailable:
        logger.exception("reconcile: Stripe's event list failed part-way; progress is saved, the next run goes on")
        fixed["errors"] += 1
    return False


def _events_start(types: list[str], start: int) -> tuple[str | None, list[dict]]:
    """Where a walk from `start` begins: (the newest event before `start`, []) when there
    is one; else (the newest event of the oldest second holding events after it, that
    second's events oldest first), found by halving the time between `start` and the
    newest event, each probe one request for one event; (None, []) when there is nothing."""
    before, _ = stripe_gateway.events_page(types=types, created={"lt": start}, limit=1)
    if before:
        return before[0]["id"], []
    newest, _ = stripe_gateway.events_page(types=types, created={"gte": start}, limit=1)
    if not newest:
        return None, []
    low, high = start, newest[0]["created"]  # some event was created in [start, high]
    while low < high:
        middle = (low + high) // 2
        if stripe_gateway.events_page(types=types, created={"gte": start, "lte": middle}, limit=1)[0]:
            high = middle
        else:
            low = middle + 1
    second, after = [], None
    while True:
        page, more = stripe_gateway.events_page(types=types, created={"gte": low, "lte": low}, limit=EVENTS_PAGE,
                                                starting_after=after)
        second += page
        if not more or not page:
            break
        after = page[-1]["id"]
    return second[0]["id"], second[::-1]


def _events_store_saving(events: list[dict], fixed: dict[str, int], *, saves: bool) -> bool:
    """Store the events (oldest first) a few at a time, saving the position after each few:
    a run stopped at its soft time limit loses a moment's work at most, never a page.
    False when one could not be stored (the position stays before it)."""
    for start in range(0, len(events), EVENTS_SAVED_EVERY):
        chunk = events[start:start + EVENTS_SAVED_EVERY]
        stored = _events_store(chunk, fixed)
        if stored and saves:
            _events_progress_save(cursor=stored[-1]["id"], read_until=stored[-1]["created"])
        if len(stored) < len(chunk):
            return False
    return True


def _events_store(events: list[dict], fixed: dict[str, int]) -> list[dict]:
    """Store the events (oldest first) we lack, in one statement; returns those done: all,
    or, when that statement fails, those before the first that can't be stored alone (the
    walk does not go past it)."""
    known = set(WebhookEvent.objects.filter(stripe_event_id__in=[e["id"] for e in events])
                .values_list("stripe_event_id", flat=True))
    missing = [event for event in events if event["id"] not in known]
    try:
        new = webhook_events_store_many(missing)
    except SoftTimeLimitExceeded:
        raise  # the run stops; these are read again next time
    except Exception:
        logger.warning("reconcile: %d events could not be stored together; one at a time", len(missing),
                       exc_info=True)
        return _events_store_each(events, known, fixed)
    for event in missing:
        if event["id"] in new:
            fixed["events_ingested"] += 1
            logger.warning("reconcile: event %s (%s) had not reached us; ingested", event["id"], event["type"])
    return events


def _events_store_each(events: list[dict], known: set[str], fixed: dict[str, int]) -> list[dict]:
    for position, event in enumerate(events):
        if event["id"] in known:
            continue
        try:
            if webhook_event_store(event):
                fixed["events_ingested"] += 1
                logger.warning("reconcile: event %s (%s) had not reached us; ingested", event["id"], event["type"])
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            logger.exception("reconcile: event %s could not be stored; the next run starts from it", event["id"])
            fixed["errors"] += 1
            return events[:position]
    return events


def _events_progress_save(*, cursor: str | None, read_until: int | None) -> None:
    """One statement, so the time limit can't split it: the walk's position (None once
    caught up) and the newest `created` read in order (unchanged when None)."""
    fields = {"stripe_events_cursor": cursor, "updated_at": timezone.now()}
    if read_until is not None:
        fields["stripe_events_read_until"] = read_until
    Installation.objects.filter(pk=installation().pk).update(**fields)


def checkout_settle_from_stripe(*, checkout_id: int) -> bool:
    """An open Checkout whose Stripe session completed or expired is settled as its event
    would have, through the webhook's own handlers (the reconciler, hold expiry, and the
    mentee's return page); returns whether anything changed."""
    checkout = Checkout.objects.get(pk=checkout_id)
    stripe_session = stripe_gateway.checkout_session_retrieve(checkout.stripe_checkout_session_id)
    if stripe_session is None:
        # Confirmed by a second read: one odd answer must not release a slot someone may pay for.
        stripe_session = stripe_gateway.checkout_session_retrieve(checkout.stripe_checkout_session_id)
        if stripe_session is None:
            return _checkout_unknown_to_stripe(checkout)
    if stripe_session["status"] == "open":
        return False
    with transaction.atomic():
        if stripe_session["status"] == "complete":
            checkout_fulfil(stripe_session=stripe_session)
        else:
            checkout_expire(stripe_session=stripe_session)
    logger.info("checkout %s was %s at Stripe; settled", checkout_id, stripe_session["status"])
    return True


SWEEP_BATCH = 1000


def _checkout_unknown_to_stripe(checkout: Checkout) -> bool:
    """Stripe says it has no such Checkout Session (test data deleted, a session made with
    another account's key): nobody can pay on it, so its hold ends as an expired one would,
    and the slot can be sold again. The admins hear of it once: the hold is not open after."""
    with transaction.atomic():
        released = Checkout.objects.filter(pk=checkout.pk, status=Checkout.Status.OPEN).update(
            status=Checkout.Status.EXPIRED, updated_at=timezone.now())
        if released:
            admin_alert_on_commit(
                subject=f"Checkout {checkout.pk} unknown to Stripe: its hold is released",
                message=(f"Stripe answers that Checkout Session {checkout.stripe_checkout_session_id} of checkout "
                         f"{checkout.pk} (mentor {checkout.mentor_id}, {checkout.scheduled_at:%Y-%m-%d %H:%M} UTC) "
                         "does not exist (read twice). Nobody can pay on it, so its hold was released as "
                         "expired and the slot is free again. Was test data deleted, or the Stripe key changed?"),
            )
    if released:
        logger.error("checkout %s: Stripe has no session %s; hold released as expired", checkout.pk,
                     checkout.stripe_checkout_session_id)
    return bool(released)


def webhook_events_sweep() -> int:
    """The backstop of the outbox relays, every minute: queue, oldest first, the events no
    relay did: stored over a minute ago and never claimed, or whose claim lapsed with the
    row still `received` (CLAIM_LEASE: the claimer died before publishing, or the broker
    lost the message; a scheduled retry only once it is that overdue). An event left in
    `processing` longer than a task may run (its worker died) goes back to `received` first;
    its attempt was counted when it began. Queuing claims the rows, so an event waiting in a
    long broker queue is not queued again every minute."""
    now = timezone.now()
    stuck_processing = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 30)
    revived = WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSING,
                                          updated_at__lt=now - stuck_processing).update(
        status=WebhookEvent.Status.RECEIVED, queued_at=None, updated_at=now)
    claimed = webhook_events_claim_stale(limit=SWEEP_BATCH, unqueued_for=STUCK_RECEIVED_AFTER)
    unsent = [row_id for row_id, event_id, _ in claimed if not webhook_event_enqueue(event_id)]
    if unsent:
        webhook_events_unclaim(row_ids=unsent)  # the broker is down: the next pass takes them
    queued = len(claimed) - len(unsent)
    if claimed or revived:
        logger.warning("sweep: %d stuck event(s), %d queued (%d left in processing by a worker that died)",
                       len(claimed), queued, revived)
    return queued


def checkout_holds_expire() -> int:
    """Release holds past expires_at, expiring their Stripe session if it is still open;
    returns how many were released. A session Stripe reports complete (paid inside the
    hold, its event still on its way) is booked at once instead. One hold that fails is
    logged and left for the next run; the others go on."""
    expired = 0
    overdue = Checkout.objects.filter(status=Checkout.Status.OPEN, expires_at__lte=timezone.now())
    for checkout in overdue.iterator():
        try:
            expired += _hold_release(checkout)
        except Exception:
            logger.exception("holds: checkout %s could not be released; next run tries again", checkout.pk)
    if expired:
        logger.info("holds: %d checkout hold(s) expired", expired)
    return expired


def _hold_release(checkout: Checkout) -> int:
    if checkout.stripe_checkout_session_id:
        try:
            stripe_gateway.checkout_session_expire(checkout.stripe_checkout_session_id)
        except PaymentProviderError:
            # Stripe refuses to expire a session that is no longer open (or that it does not
            # have at all): settle it as it is.
            checkout_settle_from_stripe(checkout_id=checkout.pk)
            return int(Checkout.objects.filter(pk=checkout.pk, status=Checkout.Status.EXPIRED).exists())
    return Checkout.objects.filter(pk=checkout.pk, status=Checkout.Status.OPEN).update(
        status=Checkout.Status.EXPIRED, updated_at=timezone.now()
    )


FOLLOWUP_WINDOW = timedelta(days=3)


def followups_sweep() -> dict[str, int]:
    """Queue again what a committed change should have set going, judged from the rows:
    refunds still `requested` (Stripe never asked), sessions without the email of every
    kind their state calls for (unless the address was refused for good), mentors whose
    stats are older than their latest session change. Every task it queues is idempotent,
    so queuing one twice is harmless."""
    now = timezone.now()
    settled = now - STUCK_RECEIVED_AFTER
    recent = now - FOLLOWUP_WINDOW
    queued = {"refunds": 0, "notifications": 0, "stats": 0}

    # Not one whose scheduled retry is still to come (its chain is backing off): queuing it
    # would start a second chain, and its attempts are counted on the row either way.
    waiting = Q(next_attempt_at__gte=settled)
    for refund_id in Refund.objects.filter(status=Refund.Status.REQUESTED, stripe_refund_id__isnull=True,
                                           updated_at__lt=settled).exclude(waiting).order_by("pk").values_list(
                                               "pk", flat=True)[:500]:
        refund_execute_on_commit(refund_id)
        queued["refunds"] += 1

    # Done: sent, or refused for good by the mail server (retrying can't change that).
    done = Notification.objects.filter(session=OuterRef("pk"), recipient=Notification.Recipient.MENTEE).filter(
        Q(sent_at__isnull=False) | Q(refused_at__isnull=False)
    )
    in_flight = Refund.objects.filter(session=OuterRef("pk"),
                                      status__in=[Refund.Status.REQUESTED, Refund.Status.PENDING])
    cancelled = Q(status=Session.Status.CANCELLED)
    due = {
        Notification.Kind.BOOKED: Q(payment_status=Session.PaymentStatus.PAID, status=Session.Status.SCHEDULED),
        # Announced only once Stripe says every refund succeeded.
        # Or cancelled with the part of the payment its policy refunds (a mentee's late cancellation).
        Notification.Kind.REFUNDED: (Q(payment_status=Session.PaymentStatus.REFUNDED) | (
            cancelled & Q(cancellation_refund_amount__gt=0, refunded_amount__gte=F("cancellation_refund_amount"))
        )) & ~Q(Exists(in_flight)),
        Notification.Kind.CANCELLED: cancelled & ~Q(payment_status=Session.PaymentStatus.PENDING),
        # Cancelled before paying: the delayed debit failed (a lost slot's notice is `cancelled`).
        Notification.Kind.PAYMENT_FAILED: cancelled & Q(payment_status=Session.PaymentStatus.PENDING)
        & ~Q(Exists(Notification.objects.filter(session=OuterRef("pk"), kind=Notification.Kind.CANCELLED))),
    }
    # A moved session: the email about its latest move (revision = reschedule_count).
    due[Notification.Kind.RESCHEDULED] = Q(status=Session.Status.SCHEDULED, reschedule_count__gt=0)
    for kind, condition in due.items():
        sent = done.filter(kind=kind)
        if kind == Notification.Kind.RESCHEDULED:
            sent = sent.filter(revision=OuterRef("reschedule_count"))
        unsent = Session.objects.filter(condition, updated_at__lt=settled, updated_at__gte=recent).exclude(
            Exists(sent)
        )
        for session_id in unsent.values_list("pk", flat=True)[:500]:
            notification_on_commit(session_id, kind)
            queued["notifications"] += 1

    stale = Mentor.objects.filter(sessions__updated_at__gte=recent, sessions__updated_at__lt=settled).annotate(
        latest=Max("sessions__updated_at")
    ).filter(Q(stats_updated_at__isnull=True) | Q(stats_updated_at__lt=F("latest")))
    for mentor_id in stale.values_list("pk", flat=True)[:500]:
        stats_recompute_on_commit(mentor_id)
        queued["stats"] += 1

    if any(queued.values()):
        logger.warning("followups sweep: queued again %s", queued)
    return queued
