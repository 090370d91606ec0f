from .checkouts import Checkout
from .installation import Installation
from .mentors import Expertise, Mentor
from .notifications import Notification
from .payouts import Payout, PayoutAccount, PayoutReversal
from .refunds import Refund
from .schedules import BlockedDate, WeeklyAvailability
from .sessions import Session, SessionReschedule
from .users import User, UserManager
from .webhooks import WebhookEvent

__all__ = ["BlockedDate", "Checkout", "Expertise", "field_max_length", "Installation", "Mentor", "Notification", "Payout",
           "PayoutAccount", "PayoutReversal", "Refund", "Session", "SessionReschedule", "User", "UserManager",
           "WebhookEvent", "WeeklyAvailability"]


def field_max_length(model, name: str) -> int:
    """A field's max_length, so forms and API schemas take their limits from the model."""
    return model._meta.get_field(name).max_length
