"""Bad deliveries to POST /api/payments/webhook: every one is a 4xx and stores nothing.

tests/api/test_webhook.py already covers forged, stale, future-dated, unsigned, tampered,
non-JSON, not-an-event, livemode and a 1 MiB body through the test client; these are the
rest: signatures that look right but aren't, bodies cut or mis-encoded after signing,
nesting that exhausts the parser, JSON PostgreSQL cannot hold, and oversized bodies sent
through a real gunicorn (declared, and chunked with no Content-Length).
"""
import hashlib
import hmac
import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from backend.models import WebhookEvent
from tests.conftest import STRIPE_TEST_KEY, WEBHOOK_SECRET
from tests.stack import ApiServer
from tests.webhooks import signature_header, signed, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024


def deliver(client, payload: bytes, header: str | None):
    extra = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    return client.post("/api/payments/webhook", payload, content_type="application/json", **extra)


def hmac_hex(secret: str, timestamp: int, payload: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def event_bytes(**data_object) -> bytes:
    return json.dumps(stripe_event(data_object={"id": "cs_test_bad_input", "object": "checkout.session",
                                                **data_object})).encode()


def with_our_signature(payload: bytes) -> tuple[bytes, str]:
    return payload, signature_header(payload, WEBHOOK_SECRET)


def _bad_deliveries() -> dict[str, tuple[bytes, str]]:
    payload = event_bytes()
    now = int(time.time())
    tampered = payload.replace(b"checkout.session.completed", b"charge.refunded")
    truncated_then_signed = payload[: len(payload) // 2]
    with_latin1_byte = event_bytes(description="CAFE_MARK").replace(b"CAFE_MARK", b"caf\xe9")
    return {
        # Signatures that look right but are not ours for this body.
        "re-signed-after-tampering-with-another-secret":
            (tampered, f"{signature_header(payload, WEBHOOK_SECRET, timestamp=now)},"
                       f"v1={hmac_hex('whsec_attacker', now, tampered)}"),
        "signed-with-the-stripe-api-key-as-secret": (payload, signature_header(payload, STRIPE_TEST_KEY)),
        "right-hmac-under-the-v0-scheme": (payload, f"t={now},v0={hmac_hex(WEBHOOK_SECRET, now, payload)}"),
        "right-hmac-without-a-timestamp": (payload, f"v1={hmac_hex(WEBHOOK_SECRET, now, payload)}"),
        "right-hmac-for-another-timestamp": (payload, f"t={now - 1},v1={hmac_hex(WEBHOOK_SECRET, now, payload)}"),
        "stale-by-a-day": (payload, signature_header(payload, WEBHOOK_SECRET, timestamp=now - 86400)),
        "future-dated-just-past-the-tolerance": (payload, signature_header(payload, WEBHOOK_SECRET, timestamp=now + 330)),
        "timestamp-of-non-ascii-digits": (payload, f"t=\u00b2\u00b3,v1={hmac_hex(WEBHOOK_SECRET, now, payload)}"),
        "timestamp-of-five-thousand-digits": (payload, f"t={'9' * 5000},v1={hmac_hex(WEBHOOK_SECRET, now, payload)}"),
        "ten-thousand-wrong-signatures": (payload, f"t={now}," + ",".join(["v1=" + "0" * 64] * 10_000)),
        "garbage-signature-header": (payload, "v1=,t=,,,===,t"),
        # Bodies changed after signing, or signed but unusable.
        "truncated-after-signing": (payload[:-7], signature_header(payload, WEBHOOK_SECRET)),
        "truncated-then-signed": with_our_signature(truncated_then_signed),
        "non-utf8-byte-inside-a-string": with_our_signature(with_latin1_byte),
        "utf16-encoded-event": with_our_signature(json.dumps(stripe_event()).encode("utf-16")),
        "utf8-bom-before-the-event": with_our_signature(b"\xef\xbb\xbf" + payload),
        "10000-levels-of-nesting": with_our_signature(nested(10_000)),
        "10000-levels-of-nesting-inside-an-event":
            with_our_signature(event_bytes(metadata="NEST").replace(b'"NEST"', nested(10_000))),
        "nan-inside-an-event": with_our_signature(event_bytes(amount_total="NUM").replace(b'"NUM"', b"NaN")),
        "infinity-inside-an-event": with_our_signature(event_bytes(amount_total="NUM").replace(b'"NUM"', b"-Infinity")),
        "json-array-of-events": with_our_signature(b"[" + payload + b"]"),
        "empty-body": with_our_signature(b""),
    }


@pytest.mark.parametrize("case", list(_bad_deliveries()))
def test_bad_delivery_is_4xx_and_stores_nothing(client, stripe_sandbox, case):
    payload, header = _bad_deliveries()[case]
    response = deliver(client, payload, header)
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["code"] == "webhook_rejected"
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("declared", ["-1", "1e6", " 12", "2097152"])
def test_a_declared_length_that_is_not_a_small_number_is_413(client, stripe_sandbox, declared):
    payload, header = signed(stripe_event(), WEBHOOK_SECRET)
    response = client.post("/api/payments/webhook", payload, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=header, CONTENT_LENGTH=declared)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not WebhookEvent.objects.exists()


def test_a_nul_in_a_signed_event_is_dropped_not_a_reason_to_refuse_the_payment(client, stripe_sandbox):
    # jsonb cannot hold \u0000; refusing would make Stripe retry the event until it gives up.
    event = stripe_event("customer.created", data_object={"id": "cus_1", "object": "customer",
                                                          "name": "Ana\x00 Lima", "note": "a literal \\u0000 stays"})
    payload, header = signed(event, WEBHOOK_SECRET)
    assert b"\\u0000" in payload
    assert deliver(client, payload, header).status_code == 200
    stored = WebhookEvent.objects.get().payload["data"]["object"]
    assert stored["name"] == "Ana Lima"
    assert stored["note"] == "a literal \\u0000 stays"


# --- Arbitrary bytes and headers: never a 5xx ---------------------------------------------


@given(body=st.binary(max_size=2048), header=st.one_of(st.none(), st.text(max_size=200)))
@hypothesis_settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_arbitrary_bytes_and_signature_headers_are_refused(client, stripe_sandbox, body, header):
    response = deliver(client, body, header.replace("\x00", "") if header else header)
    assert response.status_code == 400, response.content
    assert not WebhookEvent.objects.exists()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@given(data_object=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
       event_type=st.sampled_from(["customer.created", "invoice.paid", "payout.failed"]))
@hypothesis_settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_any_correctly_signed_json_event_is_answered_without_a_5xx(client, stripe_sandbox, data_object, event_type):
    # Event types we don't handle: stored as ignored, so nothing is processed from fuzz data.
    payload, header = signed(stripe_event(event_type, data_object=data_object), WEBHOOK_SECRET)
    response = deliver(client, payload, header)
    assert response.status_code in (200, 400), response.content


# --- Oversized bodies through a real gunicorn ---------------------------------------------


@pytest.fixture(scope="module")
def api_server(django_db_setup, django_db_blocker):
    env = {"STRIPE_SECRET_KEY": STRIPE_TEST_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    with django_db_blocker.unblock(), ApiServer(env=env, workers=1, threads=2) as server:
        yield server


def oversized_signed_event() -> tuple[bytes, str]:
    event = stripe_event("customer.created")
    event["data"]["object"]["padding"] = "x" * (2 * MIB)
    return signed(event, WEBHOOK_SECRET)


def test_over_a_mib_with_content_length_is_413_from_gunicorn(api_server):
    payload, header = oversized_signed_event()
    response = httpx.post(f"{api_server.url}/api/payments/webhook", content=payload, timeout=30,
                          headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    assert response.status_code == 413, api_server.log()
    assert response.json()["code"] == "payload_too_large"
    assert not WebhookEvent.objects.exists()


def test_over_a_mib_chunked_without_content_length_is_refused_by_gunicorn(api_server):
    payload, header = oversized_signed_event()

    def chunks():
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start:start + 64 * 1024]

    response = httpx.post(f"{api_server.url}/api/payments/webhook", content=chunks(), timeout=30,
                          headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert 400 <= response.status_code < 500, api_server.log()
    assert not WebhookEvent.objects.exists()

    # The server is still well: the next, honest delivery is stored.
    payload, header = signed(stripe_event("customer.created"), WEBHOOK_SECRET)
    honest = httpx.post(f"{api_server.url}/api/payments/webhook", content=payload, timeout=30,
                        headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    assert honest.status_code == 200, api_server.log()
    assert WebhookEvent.objects.count() == 1


# --- Signed but odd events: stored safely or a 4xx saying why, never a 5xx ---


def test_a_signed_event_with_an_id_longer_than_the_column_is_refused_naming_the_id(client, stripe_sandbox):
    payload, header = signed(stripe_event(event_id="evt_" + "a" * 300), WEBHOOK_SECRET)
    response = deliver(client, payload, header)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "id"
    assert "255" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_a_signed_event_with_an_id_that_is_not_ascii_is_refused_naming_the_id(client, stripe_sandbox):
    payload, header = signed(stripe_event(event_id="evt_\ud800x"), WEBHOOK_SECRET)
    response = deliver(client, payload, header)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "id"
    assert not WebhookEvent.objects.exists()


def test_a_lone_surrogate_escape_in_a_signed_event_is_stored_replaced_not_refused(client, stripe_sandbox):
    # jsonb refuses "\ud800" without its pair; a customer's odd name must not cost a payment.
    event = stripe_event("customer.created", data_object={"id": "cus_1", "object": "customer",
                                                          "name": "Ana \ud800 Lima", "emoji": "\U0001F600",
                                                          "type_\udfff": "key too"})
    payload, header = signed(event, WEBHOOK_SECRET)
    assert b"\\ud800" in payload and b"\\ud83d\\ude00" in payload
    response = deliver(client, payload, header)
    assert response.status_code == 200, response.content
    stored = WebhookEvent.objects.get().payload["data"]["object"]
    assert stored["name"] == "Ana \ufffd Lima"
    assert stored["emoji"] == "\U0001F600"
    assert stored["type_\ufffd"] == "key too"


def test_a_lone_surrogate_in_a_signed_event_type_is_stored_as_ignored(client, stripe_sandbox):
    payload, header = signed(stripe_event("customer.\udc00created"), WEBHOOK_SECRET)
    response = deliver(client, payload, header)
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED


# --- Refusals are generic; the reason goes to the log -------------------


@pytest.mark.parametrize("case", ["re-signed-after-tampering-with-another-secret", "stale-by-a-day",
                                  "non-utf8-byte-inside-a-string", "10000-levels-of-nesting",
                                  "nan-inside-an-event", "json-array-of-events"])
def test_a_refused_delivery_gets_a_generic_answer_and_the_reason_is_logged(client, stripe_sandbox, caplog, case):
    payload, header = _bad_deliveries()[case]
    with caplog.at_level("WARNING", logger="backend.services.webhooks"):
        response = deliver(client, payload, header)
    assert response.status_code == 400
    assert response.json() == {"detail": "Webhook refused: not a valid Stripe event for this endpoint",
                               "code": "webhook_rejected"}
    logged = [r.getMessage() for r in caplog.records if r.name == "backend.services.webhooks"]
    assert any("webhook refused:" in message for message in logged), logged
    assert not any(WEBHOOK_SECRET in message for message in logged)
