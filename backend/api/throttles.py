"""Abuse limits on API operations: per caller and per client address (429 + Retry-After)."""
from functools import wraps

from django.conf import settings

from backend.services.rate_limits import client_address_resolve, rate_limit_hit


def client_address(request) -> str:
    return client_address_resolve(remote_addr=request.META.get("REMOTE_ADDR", ""),
                                  forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""))


def request_throttle(request, *, group: str, rate_setting: str) -> None:
    """Count one call of the operation under the caller's account (JWT or page login) and the
    client's address, against the rate in settings.<rate_setting>; past it, RateLimited (429).
    The API (through `throttled`) and the pages share the counters."""
    keys = [f"address:{client_address(request)}"]
    user = getattr(request, "auth", None)
    if user is None and getattr(request, "user", None) is not None and request.user.is_authenticated:
        user = request.user
    if user is not None:
        keys.append(f"account:{user.pk}")
    rate_limit_hit(group=group, rate=getattr(settings, rate_setting), keys=keys)


def throttled(group: str, *, rate_setting: str):
    """Decorator form of request_throttle for API operations."""
    def decorate(view):
        @wraps(view)
        def counted(request, *args, **kwargs):
            request_throttle(request, group=group, rate_setting=rate_setting)
            return view(request, *args, **kwargs)
        return counted
    return decorate
