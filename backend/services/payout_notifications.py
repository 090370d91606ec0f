"""The mentor's emails about their money: a payout sent, a payout (partly) taken back.

Each is claimed on its row (Payout.email_sent_at, PayoutReversal.email_sent_at) in the
transaction around its send, like the session emails: a retried or concurrent task never
sends one twice; a send that fails leaves it unsent for the retry (and payouts_run).
"""
import logging
from datetime import UTC

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from backend.models import Payout, PayoutReversal
from backend.services.money import money_format

logger = logging.getLogger(__name__)

SUBJECTS = {"payout_sent": "Payout sent: {title}", "payout_reversed": "Payout taken back: {title}"}


def payout_notification_send(*, kind: str, object_id: int) -> int:
    """Send the `kind` email (payout_sent: a Payout id; payout_reversed: a PayoutReversal id);
    1 if this call sent it."""
    if kind not in SUBJECTS:
        raise ValueError(f"Unknown payout notification {kind!r}; expected one of {sorted(SUBJECTS)}")
    with transaction.atomic():
        if kind == "payout_sent":
            row = Payout.objects.select_for_update(of=("self",)).select_related("session", "mentor__user").filter(
                pk=object_id, email_sent_at__isnull=True, stripe_transfer_id__isnull=False).first()
            payout, reversal = row, None
        else:
            row = PayoutReversal.objects.select_for_update(of=("self",)).select_related(
                "payout__session", "payout__mentor__user").filter(
                pk=object_id, email_sent_at__isnull=True, status=PayoutReversal.Status.SUCCEEDED).first()
            payout, reversal = (row.payout if row else None), row
        if row is None:
            return 0  # sent already, or nothing to tell (yet)
        _email(kind, payout, reversal).send()
        row.email_sent_at = timezone.now()
        row.save(update_fields=["email_sent_at", "updated_at"])
    logger.info("Sent %s email for %s %s to mentor %s", kind, type(row).__name__.lower(), row.pk, payout.mentor_id)
    return 1


def _email(kind: str, payout: Payout, reversal: PayoutReversal | None) -> EmailMultiAlternatives:
    session, mentor = payout.session, payout.mentor
    context = {
        "name": mentor.name,
        "session": session,
        "when": f"{session.scheduled_at.astimezone(UTC):%A %d %B %Y, %H:%M} UTC",
        "amount": money_format(payout.amount, payout.currency),
        "reversed": money_format(reversal.amount if reversal else 0, payout.currency),
        "reason": reversal.reason if reversal else "",
        "kept": money_format(payout.amount - payout.amount_reversed, payout.currency),
        "transfer_id": payout.stripe_transfer_id,
        "frontend_url": settings.FRONTEND_URL,
    }
    message = EmailMultiAlternatives(
        subject=SUBJECTS[kind].format(title=" ".join(session.title.split())),
        body=render_to_string(f"emails/{kind}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[mentor.user.email],
    )
    message.attach_alternative(render_to_string(f"emails/{kind}.html", context), "text/html")
    return message
