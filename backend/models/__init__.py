from .checkouts import Checkout
from .mentors import Expertise, Mentor
from .notifications import Notification
from .refunds import Refund
from .schedules import WeeklyAvailability
from .sessions import Session
from .users import User, UserManager
from .webhooks import WebhookEvent

__all__ = ["Checkout", "Expertise", "Mentor", "Notification", "Refund", "Session", "User", "UserManager", "WebhookEvent",
           "WeeklyAvailability"]
