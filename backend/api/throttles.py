"""Abuse limits on API operations as a decorator; the counting itself (shared with the
pages) is services/rate_limits.request_throttle."""
from functools import wraps

from backend.services.rate_limits import client_address, request_throttle

__all__ = ["client_address", "request_throttle", "throttled"]


def throttled(group: str, *, rate_setting: str):
    """Count the operation against settings.<rate_setting> before it runs (429 past it)."""
    def decorate(view):
        @wraps(view)
        def counted(request, *args, **kwargs):
            request_throttle(request, group=group, rate_setting=rate_setting)
            return view(request, *args, **kwargs)
        return counted
    return decorate
