"""Abuse limits: request counters per account and per client address in the shared cache
(django-ratelimit's fixed windows), so every gunicorn worker sees one count.

Rates are django-ratelimit's "count/period" (LOGIN_RATE_LIMIT, REGISTER_RATE_LIMIT,
CHECKOUT_RATE_LIMIT, CANCEL_RATE_LIMIT); RATE_LIMIT_ENABLED=false turns every limit off.
Callers pass plain keys (`account:<id>`, `address:<ip>`), so the API and the web pages share
them. A cache outage fails open (logged): nobody is locked out because Redis is down.
"""
import ipaddress
import logging
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from django_ratelimit.core import get_usage

from backend.errors import RateLimited

logger = logging.getLogger(__name__)


def client_address_resolve(*, remote_addr: str, forwarded_for: str = "") -> str:
    """The client's address: the peer's, or behind a TRUSTED_PROXY, the nearest address in
    X-Forwarded-For that is not one of our proxies (entries left of it are the client's
    say, so forgeable). Without TRUSTED_PROXY the header is ignored: anyone could send it."""
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXY))
    if not networks or not _is_trusted(remote_addr, networks):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return hop
    return hops[0] if hops else remote_addr


@lru_cache(maxsize=8)
def _trusted_networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _is_trusted(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def rate_limit_hit(*, group: str, rate: str, keys: Iterable[str]) -> None:
    """Count one request under each key; RateLimited (with the seconds to wait) if any key
    is now past `rate`. Every key is counted, so a refused request still counts."""
    waits = [usage["time_left"] for usage in _usages(group, rate, keys, increment=True) if usage["should_limit"]]
    if waits:
        raise RateLimited("Too many requests; try again later", retry_after=max(waits))


def rate_limit_exhausted(*, group: str, rate: str, keys: Iterable[str]) -> None:
    """RateLimited if any key has already used up `rate` (counts nothing: see rate_limit_count)."""
    waits = [usage["time_left"] for usage in _usages(group, rate, keys, increment=False)
             if usage["count"] >= usage["limit"]]
    if waits:
        raise RateLimited("Too many requests; try again later", retry_after=max(waits))


def rate_limit_count(*, group: str, rate: str, keys: Iterable[str]) -> None:
    """Count one event (a failed login) under each key, refusing nothing."""
    _usages(group, rate, keys, increment=True)


def _usages(group: str, rate: str, keys: Iterable[str], *, increment: bool) -> list[dict]:
    if not settings.RATE_LIMIT_ENABLED:
        return []
    usages = []
    for key in keys:
        try:
            usage = get_usage(None, group=group, key=lambda _group, _request, key=key: key, rate=rate,
                              increment=increment)
        except Exception:
            # Cache backends raise their own errors (redis, OSError): fail open, say so.
            logger.warning("rate limit %s: cache unavailable, not counting", group, exc_info=True)
            continue
        if usage is not None and usage["limit"] > 0:  # limit 0: the cache could not count
            usages.append(usage)
    return usages


def client_address(request) -> str:
    """The client's address for an HTTP request (see client_address_resolve)."""
    return client_address_resolve(remote_addr=request.META.get("REMOTE_ADDR", ""),
                                  forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""))


def request_throttle(request, *, group: str, rate_setting: str) -> None:
    """Count one call of the operation under the caller's account (JWT or page login) and the
    client's address, against the rate in settings.<rate_setting>; past it, RateLimited (429).
    The API (through api/throttles.throttled) and the pages share the counters."""
    keys = [f"address:{client_address(request)}"]
    user = getattr(request, "auth", None)
    if user is None and getattr(request, "user", None) is not None and request.user.is_authenticated:
        user = request.user
    if user is not None:
        keys.append(f"account:{user.pk}")
    rate_limit_hit(group=group, rate=getattr(settings, rate_setting), keys=keys)
