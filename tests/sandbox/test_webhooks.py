"""Webhook delivery: Stripe's signature, retries with backoff, delivery outcome per event,
pause/resume, resend, and the faults (duplicates, reordering, delay, failed first tries)."""

import collections
import time

import pytest
import stripe

from stripe_sandbox.process import SandboxControlError

from .conftest import WEBHOOK_SECRET
from .factories import create_session


def emit_events(sandbox, client, count: int) -> None:
    """`count` events (a multiple of 4): each paid session emits four."""
    assert count % 4 == 0
    for _ in range(count // 4):
        sandbox.pay(create_session(client).id)


def emitted_event_ids(client) -> list[str]:
    """Every event id, oldest first."""
    newest_first = client.v1.events.list(params={"limit": 100}).auto_paging_iter()
    return [event.id for event in newest_first][::-1]


def test_delivery_passes_construct_event_with_the_secret(client, sandbox, receiver):
    sandbox.pay(create_session(client).id)
    receiver.wait_for(lambda deliveries: len(deliveries) == 4)

    for delivery in receiver.deliveries:
        event = stripe.Webhook.construct_event(delivery.body, delivery.signature, WEBHOOK_SECRET)
        assert event.id.startswith("evt_")
        assert event.api_version == stripe.api_version
        assert delivery.headers["content-type"].startswith("application/json")
        assert delivery.signature.startswith("t=") and ",v1=" in delivery.signature


def test_delivery_fails_construct_event_with_a_wrong_secret(client, sandbox, receiver):
    sandbox.pay(create_session(client).id)
    delivery = receiver.wait_for(lambda deliveries: deliveries)[0]

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, delivery.signature, "whsec_some_other_secret")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body.replace("4500", "1"), delivery.signature, WEBHOOK_SECRET)


def test_signature_uses_wall_time_even_after_the_clock_moved(client, sandbox, receiver):
    sandbox.advance_clock(3 * 3600)
    session = create_session(client)
    client.v1.checkout.sessions.expire(session.id)

    delivery = receiver.wait_for(lambda deliveries: deliveries)[0]

    stripe.Webhook.construct_event(delivery.body, delivery.signature, WEBHOOK_SECRET)  # within 300 s
    assert delivery.event["created"] >= time.time() + 3 * 3600 - 5


def test_failing_endpoint_is_retried_with_backoff_until_it_answers_2xx(client, sandbox, receiver):
    receiver.fail_next(3, status=503)
    session = create_session(client)

    client.v1.checkout.sessions.expire(session.id)

    receiver.wait_for_event("checkout.session.expired", id=session.id)
    attempts = sandbox.deliveries(event_type="checkout.session.expired")
    assert [(a["attempt"], a["status_code"], a["succeeded"]) for a in attempts] == [
        (1, 503, False), (2, 503, False), (3, 503, False), (4, 200, True)]
    gaps = [later["time"] - earlier["time"] for earlier, later in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09 and gaps[2] >= 0.19  # base 0.05 s, doubling
    event = client.v1.events.retrieve(attempts[0]["event_id"])
    assert event.pending_webhooks == 0


def test_delivery_success_false_lists_the_undelivered(client, sandbox, receiver):
    delivered = create_session(client)
    client.v1.checkout.sessions.expire(delivered.id)
    sandbox.wait_until_delivered()
    receiver.fail_always(status=500)
    undelivered = create_session(client)
    client.v1.checkout.sessions.expire(undelivered.id)

    sandbox.wait_until_delivered()  # the 4 attempts of this suite's sandbox are used up

    failing = client.v1.events.list(params={"delivery_success": False})
    succeeded = client.v1.events.list(params={"delivery_success": True})
    assert [e.data.object.id for e in failing.data] == [undelivered.id]
    assert failing.data[0].pending_webhooks == 1
    assert [e.data.object.id for e in succeeded.data] == [delivered.id]
    assert len(sandbox.deliveries(event_id=failing.data[0].id)) == 4


def test_resend_delivers_an_event_again(client, sandbox, receiver):
    receiver.fail_always()
    session = create_session(client)
    client.v1.checkout.sessions.expire(session.id)
    sandbox.wait_until_delivered()
    event_id = client.v1.events.list(params={"delivery_success": False}).data[0].id
    receiver.succeed()

    sandbox.resend(event_id)

    receiver.wait_for_event("checkout.session.expired", id=session.id)
    sandbox.wait_until_delivered()
    assert client.v1.events.list(params={"delivery_success": False}).data == []


def test_pause_holds_deliveries_and_resume_delivers_the_backlog(client, sandbox, receiver):
    sandbox.pause()
    emit_events(sandbox, client, 8)
    time.sleep(0.3)
    assert receiver.deliveries == []
    assert len(client.v1.events.list(params={"delivery_success": False}).data) == 8

    sandbox.resume()

    receiver.wait_for(lambda deliveries: len(deliveries) == 8)
    assert [e["id"] for e in receiver.events()] == emitted_event_ids(client)  # in order, no faults
    sandbox.wait_until_delivered()
    assert client.v1.events.list(params={"delivery_success": False}).data == []


def test_api_requests_do_not_wait_for_a_slow_endpoint(client, sandbox, receiver):
    receiver.answer_slowly(1.0)
    session = create_session(client)
    sandbox.pay(session.id)

    started = time.monotonic()
    for _ in range(3):
        client.v1.checkout.sessions.expire(create_session(client).id)
    elapsed = time.monotonic() - started

    assert elapsed < 0.8


def test_duplicate_fault_delivers_some_events_twice_over_200_events(client, sandbox, receiver):
    sandbox.set_faults(duplicate_rate=0.3, seed=11)

    emit_events(sandbox, client, 200)
    sandbox.wait_until_delivered(timeout=30)

    per_event = collections.Counter(event["id"] for event in receiver.events())
    assert set(per_event) == set(emitted_event_ids(client))
    assert set(per_event.values()) <= {1, 2}
    duplicated = sum(1 for count in per_event.values() if count == 2)
    assert 40 <= duplicated <= 80  # 30% of 200, with room for chance
    copies = [d for d in sandbox.deliveries() if d["copy"] == "duplicate"]
    assert len(copies) == duplicated
    first_seen = {}
    for event in receiver.events():
        event.pop("pending_webhooks")  # the live count, as on Stripe: 0 once one copy got through
        assert first_seen.setdefault(event["id"], event) == event  # a duplicate is the same event


def test_reorder_fault_shuffles_within_the_window_over_200_events(client, sandbox, receiver):
    sandbox.pause()
    emit_events(sandbox, client, 200)
    sandbox.set_faults(reorder_window=10, seed=5)

    sandbox.resume()
    sandbox.wait_until_delivered(timeout=30)

    emitted = emitted_event_ids(client)
    received = [event["id"] for event in receiver.events()]
    assert sorted(received) == sorted(emitted)  # nothing lost, nothing doubled
    position = {event_id: index for index, event_id in enumerate(emitted)}
    displacement = [abs(index - position[event_id]) for index, event_id in enumerate(received)]
    out_of_order = sum(1 for a, b in zip(received, received[1:]) if position[a] > position[b])
    assert out_of_order >= 40  # a shuffled window of 10 has ~4.5 descents
    assert max(displacement) < 10  # never moved beyond its window


def test_fail_first_fault_counts_first_attempts_as_failed_and_retries(client, sandbox, receiver):
    sandbox.set_faults(fail_first=2)
    session = create_session(client)

    client.v1.checkout.sessions.expire(session.id)
    sandbox.wait_until_delivered()

    attempts = sandbox.deliveries(event_type="checkout.session.expired")
    assert [(a["attempt"], a["status_code"], a["succeeded"], a["fault"]) for a in attempts] == [
        (1, 200, False, "fail_first"), (2, 200, False, "fail_first"), (3, 200, True, None)]
    assert len(receiver.deliveries) == 3  # the endpoint saw every try: a lost answer, as in production


def test_delay_fault_holds_each_delivery(client, sandbox, receiver):
    sandbox.set_faults(delay_ms=400)
    session = create_session(client)
    started = time.time()

    client.v1.checkout.sessions.expire(session.id)

    delivery = receiver.wait_for(lambda deliveries: deliveries)[0]
    assert delivery.received_at - started >= 0.35


def test_faults_are_validated(sandbox):
    with pytest.raises(SandboxControlError):
        sandbox.set_faults(duplicate_rate=1.5)
    with pytest.raises(SandboxControlError):
        sandbox._call("POST", "/webhooks/faults", {"explode": True})


def test_events_list_filters_by_type_types_and_created(client, sandbox):
    sandbox.pay(create_session(client).id)
    sandbox.advance_clock(50)
    client.v1.checkout.sessions.expire(create_session(client).id)

    assert [e.type for e in client.v1.events.list(params={"type": "checkout.session.*"}).data] == [
        "checkout.session.expired", "checkout.session.completed"]
    assert {e.type for e in client.v1.events.list(
        params={"types": ["charge.succeeded", "payment_intent.succeeded"]}).data} == {
        "charge.succeeded", "payment_intent.succeeded"}
    latest = client.v1.events.list(params={"limit": 1}).data[0]
    recent = client.v1.events.list(params={"created": {"gte": latest.created}})
    assert [e.id for e in recent.data] == [latest.id]


def test_an_endpoint_subscribed_to_some_types_is_sent_only_those():
    """--webhook-events, like a Dashboard endpoint's enabled_events: the other events are
    still created and listed, and never sent."""
    from stripe_sandbox.process import SandboxProcess
    from stripe_sandbox.receiver import WebhookReceiver

    with WebhookReceiver() as receiver, SandboxProcess(
            webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET,
            webhook_events=["checkout.session.completed", "charge.refunded"]) as sandbox:
        client = sandbox.stripe_client("sk_test_sandbox_suite")
        session = create_session(client)
        sandbox.pay(session.id)
        receiver.wait_for_event("checkout.session.completed", id=session.id)
        time.sleep(0.5)  # the other three would have been sent by now
        assert [event["type"] for event in receiver.events()] == ["checkout.session.completed"]
        # All four exist, and none waits for a delivery (pending_webhooks 0 once sent, or never sent).
        listed = {event.type: event.pending_webhooks for event in client.v1.events.list().auto_paging_iter()}
        assert listed == {"payment_intent.created": 0, "charge.succeeded": 0, "payment_intent.succeeded": 0,
                          "checkout.session.completed": 0}
