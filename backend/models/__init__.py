from .checkouts import Checkout
from .installation import Installation
from .mentors import Expertise, Mentor
from .notifications import Notification
from .refunds import Refund
from .schedules import WeeklyAvailability
from .sessions import Session
from .users import User, UserManager
from .webhooks import WebhookEvent

__all__ = ["Checkout", "Expertise", "field_max_length", "Installation", "Mentor", "Notification", "Refund", "Session", "User", "UserManager",
           "WebhookEvent", "WeeklyAvailability"]


def field_max_length(model, name: str) -> int:
    """A field's max_length, so forms and API schemas take their limits from the model."""
    return model._meta.get_field(name).max_length
