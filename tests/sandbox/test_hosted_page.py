"""The hosted Checkout page over plain HTTP: what it shows and where it redirects."""

import httpx

from .factories import create_session


def submit_card(session, card: str, **fields) -> httpx.Response:
    return httpx.post(session.url, data={"cardnumber": card, "email": "mentee@example.com", **fields})


def test_page_shows_the_line_item_amount_email_card_fields_pay_and_cancel(client):
    session = create_session(client)

    page = httpx.get(session.url)

    assert page.status_code == 200
    assert "Mentorship session: system design" in page.text
    assert "$45.00" in page.text
    assert 'name="email"' in page.text and 'value="mentee@example.com"' in page.text
    assert 'name="cardnumber"' in page.text
    assert "Pay $45.00" in page.text
    assert 'href="https://mentors.example/sessions?cancelled=true"' in page.text


def test_paying_with_4242_redirects_to_success_url_with_the_session_id(client):
    session = create_session(client)

    response = submit_card(session, "4242 4242 4242 4242")

    assert response.status_code == 303
    assert response.headers["location"] == (
        f"https://mentors.example/sessions?success=true&session_id={session.id}")
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_declined_card_shows_the_decline_and_keeps_the_form(client):
    session = create_session(client)

    response = submit_card(session, "4000 0000 0000 0002")

    assert response.status_code == 200
    assert "Your card was declined." in response.text
    assert 'name="cardnumber"' in response.text
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_card_3155_shows_an_authentication_step(client):
    session = create_session(client)

    response = submit_card(session, "4000002500003155")
    step = httpx.get(session.url)
    failed = httpx.post(f"{session.url}/authenticate", data={"outcome": "fail"})

    assert response.status_code == 303
    assert "Complete authentication" in step.text and "Fail authentication" in step.text
    assert "We are unable to authenticate your payment method." in failed.text
    submit_card(session, "4000002500003155")
    completed = httpx.post(f"{session.url}/authenticate", data={"outcome": "complete"})
    assert completed.headers["location"].endswith(session.id)


def test_bank_debit_completes_and_redirects(client):
    session = create_session(client)

    response = httpx.post(f"{session.url}/bank_debit", data={"outcome": "succeeded"})

    assert response.status_code == 303
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "unpaid"


def test_completed_and_expired_sessions_show_that_instead_of_a_form(client, sandbox):
    paid = create_session(client)
    page_url = paid.url
    submit_card(paid, "4242424242424242")
    expired = create_session(client)
    client.v1.checkout.sessions.expire(expired.id)

    paid_page = httpx.get(page_url)
    expired_page = httpx.get(f"{sandbox.api_base}/c/pay/{expired.id}")  # its url is null now

    assert 'data-testid="session-complete"' in paid_page.text and 'name="cardnumber"' not in paid_page.text
    assert 'data-testid="session-expired"' in expired_page.text
    assert 'name="cardnumber"' not in expired_page.text
    late = httpx.post(f"{sandbox.api_base}/c/pay/{expired.id}", data={"cardnumber": "4242424242424242"})
    assert "expired" in late.text
    assert client.v1.checkout.sessions.retrieve(expired.id).status == "expired"


def test_unknown_session_page_is_404(sandbox):
    assert httpx.get(f"{sandbox.api_base}/c/pay/cs_test_nope").status_code == 404
