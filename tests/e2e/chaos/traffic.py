"""Mentees booking and paying, mentors and the Stripe Dashboard refunding: the traffic of
the chaos suite, over HTTP only (the API for bookings and cancels, the sandbox's control
API for what a customer or the Dashboard does at Stripe). Each booking remembers what
should become of it, so the test can check the end state against it."""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx

from stripe_sandbox.process import SandboxProcess

DURATIONS = (30, 45, 60)


@dataclass
class Party:
    user_id: int
    email: str
    token: str = ""


@dataclass
class Booking:
    n: int
    phase: str
    mentee: Party
    mentor: Party
    mentor_id: int
    duration_minutes: int
    cs_id: str = ""
    amount: int = 0
    payment_intent: str = ""
    charge: str = ""
    card: str = "4242424242424242"  # 4000000000005126: pays, its refunds fail later
    debit: str | None = None  # paid by a delayed bank debit that "succeeded" or "failed"
    # What should have happened to the money: None (paid), or how it was refunded.
    refund_kind: str | None = None  # cancel_mentee | cancel_mentor | cancel_failing | dashboard_full | dashboard_partial
    refund_amount: int = 0

    @property
    def fully_refunded(self) -> bool:
        return self.refund_kind is not None and self.refund_amount == self.amount

    @property
    def kept(self) -> bool:
        """Still a booked, paid session at the end (counted in the mentor's stats)."""
        return not self.fully_refunded and self.refund_kind != "cancel_failing" and self.debit != "failed"


def slot(n: int, mentors: int, now: datetime) -> str:
    """Booking n's start: its mentor's k-th hour (06:00-17:00 UTC from two days ahead), so
    no two bookings of a mentor, or of a mentee (n mod 2*mentors), ever overlap."""
    k = n // mentors
    day = (now + timedelta(days=2 + k // 12)).replace(hour=6 + k % 12, minute=0, second=0, microsecond=0)
    return day.isoformat()


class Marketplace:
    def __init__(self, api_url: str, sandbox: SandboxProcess, *, mentors: list[tuple[int, Party]],
                 mentees: list[Party], password: str, threads: int = 4):
        self.http = httpx.Client(base_url=api_url, timeout=30)
        self.sandbox = sandbox
        self.mentors = mentors
        self.mentees = mentees
        self.threads = threads
        self.now = datetime.now(timezone.utc)
        self.bookings: list[Booking] = []
        for party in [*mentees, *(mentor for _, mentor in mentors)]:
            response = self.http.post("/api/auth/login", json={"email": party.email, "password": password})
            assert response.status_code == 200, response.text
            party.token = response.json()["access"]

    def close(self) -> None:
        self.http.close()

    # ---- Booking and paying ------------------------------------------------------

    def _post_booking(self, booking: Booking) -> httpx.Response:
        return self.http.post(
            "/api/payments/create-checkout-session",
            json={"mentor_id": booking.mentor_id, "title": f"Chaos booking {booking.n}",
                  "description": f"phase {booking.phase}", "scheduled_at": slot(booking.n, len(self.mentors), self.now),
                  "duration_minutes": booking.duration_minutes},
            headers={"Authorization": f"Bearer {booking.mentee.token}"},
        )

    def _booking(self, n: int, phase: str) -> Booking:
        mentor_id, mentor = self.mentors[n % len(self.mentors)]
        return Booking(n=n, phase=phase, mentee=self.mentees[n % len(self.mentees)], mentor=mentor,
                       mentor_id=mentor_id, duration_minutes=DURATIONS[n % len(DURATIONS)])

    def book(self, n: int, phase: str) -> Booking:
        booking = self._booking(n, phase)
        response = self._post_booking(booking)
        assert response.status_code == 200, f"booking {n}: {response.status_code} {response.text}"
        booking.cs_id = response.json()["session_id"]
        self.bookings.append(booking)
        return booking

    def try_book(self, n: int, phase: str) -> httpx.Response:
        """A booking attempt that is expected to fail (a dependency is down): not recorded."""
        return self._post_booking(self._booking(n, phase))

    def pay(self, booking: Booking) -> Booking:
        result = self.sandbox.pay(booking.cs_id, card=booking.card)
        assert result["outcome"] == "succeeded", result
        return self._paid(booking, result)

    def pay_by_debit(self, booking: Booking, outcome: str, settle_after: int = 5) -> Booking:
        """A delayed bank debit: the checkout completes unpaid, the debit settles later."""
        result = self.sandbox.pay(booking.cs_id, method="bank_debit", outcome=outcome, settle_after=settle_after)
        assert result["outcome"] == "processing", result
        booking.debit = outcome
        return self._paid(booking, result)

    def _paid(self, booking: Booking, result: dict) -> Booking:
        booking.amount = result["session"]["amount_total"]
        booking.payment_intent = result["payment_intent"]["id"]
        booking.charge = result["payment_intent"]["latest_charge"]
        return booking

    def book_all(self, numbers, phase: str) -> list[Booking]:
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(lambda n: self.book(n, phase), numbers))

    def pay_all(self, bookings: list[Booking]) -> list[Booking]:
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(self.pay, bookings))

    def book_and_pay_all(self, numbers, phase: str) -> list[Booking]:
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(lambda n: self.pay(self.book(n, phase)), numbers))

    # ---- Refunds -----------------------------------------------------------------

    def cancel(self, booking: Booking, session_id: int, *, by: str) -> httpx.Response:
        """The mentee or the mentor cancels through the API: a full refund (which Stripe
        fails later for a 4000000000005126 card: nothing refunded in the end)."""
        party = booking.mentee if by == "mentee" else booking.mentor
        if booking.card == "4000000000005126":
            booking.refund_kind, booking.refund_amount = "cancel_failing", 0
        else:
            booking.refund_kind, booking.refund_amount = f"cancel_{by}", booking.amount
        return self.http.post(f"/api/sessions/{session_id}/cancel", json={"reason": "chaos"},
                              headers={"Authorization": f"Bearer {party.token}"})

    def dashboard_refund(self, booking: Booking, amount: int | None = None) -> dict:
        """A refund made in the Stripe Dashboard: only its events tell the backend."""
        booking.refund_kind = "dashboard_full" if amount is None else "dashboard_partial"
        booking.refund_amount = booking.amount if amount is None else amount
        return self.sandbox.refund_charge(booking.charge, amount=amount)
