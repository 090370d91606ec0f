"""Amounts as people read them. Money is stored in integer minor units everywhere; this is
the one place that knows how many decimals each currency has."""
from decimal import Decimal

# Stripe's zero- and three-decimal currencies; every other one has two decimals.
# https://docs.stripe.com/currencies#special-cases
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL_CURRENCIES = frozenset("bhd jod kwd omr tnd".split())


def currency_decimals(currency: str) -> int:
    code = (currency or "").lower()
    return 0 if code in ZERO_DECIMAL_CURRENCIES else 3 if code in THREE_DECIMAL_CURRENCIES else 2


def money_format(amount: int | None, currency: str) -> str:
    """Minor units as a readable amount: 12000 usd -> "120.00 USD", 6000 jpy -> "6,000 JPY"."""
    decimals = currency_decimals(currency)
    value = Decimal(amount or 0).scaleb(-decimals)
    return f"{value:,.{decimals}f} {(currency or '').upper()}".strip()
