"""A worker process with the console email backend prints each email exactly as it would be
sent, so a developer can save it as an .eml file: no log prefix before the first header, no
request id after the body's first line, MIME boundaries not masked as card numbers."""
import email
import re
import uuid
from email import policy

import pytest
from django.conf import settings

from backend.models import Refund
from backend.observability import context as log_context
from tests.factories import make_mentor, make_session, make_user
from tests.polling import wait_for
from tests.stack import CeleryProcess

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEPARATOR = "-" * 79


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def printed_messages(output: str) -> list[str]:
    """Each email the console backend printed (one write), from its first header to its last
    line; the worker's log lines (stderr, same file) can only come before or after it."""
    messages = []
    for chunk in output.split(SEPARATOR):
        start = chunk.find("Content-Type: ")
        if start < 0:
            continue
        lines = chunk[start:].split("\n")
        while lines and (not lines[-1].strip() or LOG_LINE.match(lines[-1])):
            lines.pop()
        messages.append("\n".join(lines) + "\n")
    return messages


def test_a_workers_console_emails_can_be_saved_as_eml_files(tmp_path):
    mentor, mentee = make_mentor(name="Grace Hopper", hourly_rate=13000), make_user(name="Ada Lovelace")
    session = make_session(mentor=mentor, mentee=mentee, title="Career chat", status="cancelled",
                           cancelled_by="mentee", stripe_payment_id="pi_not_at_any_stripe")
    refund = Refund.objects.create(session=session, amount=13000, currency="usd")
    queue = f"console-mail-{uuid.uuid4().hex[:8]}"
    environment = {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend", "STRIPE_SECRET_KEY": "",
                   "CELERY_TASK_DEFAULT_QUEUE": queue, "CELERY_CONTROL_EXCHANGE": queue, "LOG_FORMAT": "plain",
                   "ADMIN_EMAILS": "ops@example.test"}
    from worker import app

    with CeleryProcess("worker", name=queue, env=environment,
                       arguments=["--concurrency", "1", "--loglevel", "INFO", "--hostname", f"{queue}@%h"]) as worker:
        with log_context.scope({"request_id": "req0console0mail"}):
            # Stripe is not configured in that worker: the refund fails for good, the admins get
            # an alert (plain text) and the mentee a "did not go through" email (multipart).
            app.send_task("refund_execute", args=[refund.pk], queue=queue)
        output = wait_for(lambda: (lambda out: out if out.count(SEPARATOR) >= 2 else None)(worker.log()),
                          timeout=60, message="two emails printed")

    assert "[redacted]" not in output
    messages = printed_messages(output)
    assert len(messages) == 2, output[-3000:]
    by_subject = {}
    for number, text in enumerate(messages):
        path = tmp_path / f"{number}.eml"
        path.write_bytes(text.encode())
        with path.open("rb") as saved:
            parsed = email.message_from_binary_file(saved, policy=policy.default)
        assert parsed["From"] == settings.DEFAULT_FROM_EMAIL
        by_subject[parsed["Subject"]] = parsed

    alert = by_subject[f"[MyRoadmap] Refund {refund.pk} failed: not sent to Stripe"]
    first_line = alert.get_content().splitlines()[0]
    assert first_line.startswith(f"Refund {refund.pk} of 130.00 USD on session {session.pk} could not be sent")
    assert "req0console0mail" not in alert.get_content()

    notice = by_subject["Your refund did not go through yet: Career chat"]
    boundary = notice.get_boundary()
    assert re.fullmatch(r"=+\d+==", boundary), boundary  # the digits survived
    plain = notice.get_body(preferencelist=("plain",)).get_content()
    assert plain.splitlines()[0] == "Hi Ada Lovelace,"
    assert "The refund of 130.00 USD" in plain and "req0console0mail" not in plain
    assert notice.get_body(preferencelist=("html",)) is not None


def test_log_masking_keeps_mime_boundaries_and_message_ids_but_not_card_numbers():
    import logging

    from backend.observability.logging import RedactingFilter

    text = ('Content-Type: multipart/alternative; boundary="===============8123456789012345678=="\n'
            "Message-ID: <179622471767.18061.1684058117720639695@localhost>\n\n"
            "--===============8123456789012345678==\npaid with 4242 4242 4242 4242.\n"
            "--===============8123456789012345678==--")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s", (text,), None)
    RedactingFilter().filter(record)
    masked = record.getMessage()
    assert masked.count("===============8123456789012345678==") == 3
    assert "1684058117720639695@localhost" in masked
    assert "4242" not in masked and "paid with [redacted]" in masked
