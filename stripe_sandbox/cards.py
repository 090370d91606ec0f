"""Stripe's test cards and what each one does (https://docs.stripe.com/testing)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TestCard:
    number: str
    brand: str = "visa"
    funding: str = "credit"
    # None: the payment succeeds. Otherwise (code, decline_code, message) of the decline.
    decline: tuple[str, str | None, str] | None = None
    requires_authentication: bool = False
    disputed_after_payment: bool = False
    refunds_fail_later: bool = False

    @property
    def fingerprint(self) -> str:
        return f"sbx{self.number[-8:]}"


_DECLINED = ("card_declined", "generic_decline", "Your card was declined.")

TEST_CARDS = {card.number: card for card in [
    TestCard("4242424242424242"),
    TestCard("4000056655665556", funding="debit"),
    TestCard("5555555555554444", brand="mastercard"),
    TestCard("4000000000000002", decline=_DECLINED),
    TestCard("4000000000009995", decline=("card_declined", "insufficient_funds",
                                          "Your card has insufficient funds.")),
    TestCard("4000000000009987", decline=("card_declined", "lost_card", "Your card was declined.")),
    TestCard("4000000000000069", decline=("expired_card", "expired_card", "Your card has expired.")),
    TestCard("4000000000000127", decline=("incorrect_cvc", "incorrect_cvc",
                                          "Your card's security code is incorrect.")),
    TestCard("4000000000000119", decline=("processing_error", "processing_error",
                                          "An error occurred while processing your card. "
                                          "Try again in a little bit.")),
    TestCard("4000002500003155", requires_authentication=True),
    TestCard("4000000000000259", disputed_after_payment=True),
    TestCard("4000000000005126", refunds_fail_later=True),
]}

AUTHENTICATION_FAILED_MESSAGE = (
    "We are unable to authenticate your payment method. Please choose a different "
    "payment method and try again.")


def card_for_number(raw_number: str) -> TestCard:
    """The behaviour of a card number as entered (spaces allowed). Numbers that are not
    Stripe test cards are refused as Stripe's test mode refuses them."""
    number = "".join(ch for ch in raw_number if ch.isdigit())
    if number in TEST_CARDS:
        return TEST_CARDS[number]
    if len(number) < 12 or not _luhn_valid(number):
        return TestCard(number or "0000", decline=("incorrect_number", None,
                                                   "Your card number is incorrect."))
    return TestCard(number, decline=("card_declined", "test_mode_live_card",
                                     "Your card was declined. Your request was in test mode, "
                                     "but used a non test (live) card. For a list of valid test "
                                     "cards, visit: https://stripe.com/docs/testing."))


def _luhn_valid(number: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0
