"""Abuse limits on API operations: per caller and per client address (429 + Retry-After)."""
from functools import wraps

from django.conf import settings

from backend.services.rate_limits import client_address_resolve, rate_limit_hit


def client_address(request) -> str:
    return client_address_resolve(remote_addr=request.META.get("REMOTE_ADDR", ""),
                                  forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""))


def throttled(group: str, *, rate_setting: str):
    """Count each call of the operation under the caller's account (when authenticated) and
    the client's address, against the rate in settings.<rate_setting>; past it, 429."""
    def decorate(view):
        @wraps(view)
        def counted(request, *args, **kwargs):
            keys = [f"address:{client_address(request)}"]
            if getattr(request, "auth", None) is not None:
                keys.append(f"account:{request.auth.pk}")
            rate_limit_hit(group=group, rate=getattr(settings, rate_setting), keys=keys)
            return view(request, *args, **kwargs)
        return counted
    return decorate
