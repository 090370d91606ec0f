"""Where our pages are, as the visitor's browser reaches them: the base of the links that
leave the site and must come back (Checkout's return URLs)."""
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from backend.services.rate_limits import peer_is_trusted_proxy


def request_site_url(request) -> str:
    """FRONTEND_URL when it is set; else the request's own origin, `scheme://host[:port]`.

    The host is the Host header, which Django has already checked against ALLOWED_HOSTS.
    Behind a TRUSTED_PROXY (and only when the request comes from it) the proxy's
    X-Forwarded-Proto and X-Forwarded-Host say what the browser used; from anyone else
    they are ignored, as forgeable.
    """
    if settings.FRONTEND_URL:
        return settings.FRONTEND_URL
    scheme = request.META.get("wsgi.url_scheme") or "http"
    host = request.get_host()
    if peer_is_trusted_proxy(request.META.get("REMOTE_ADDR", "")):
        proto = request.META.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scheme = proto
        forwarded_host = request.META.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()
        domain, _ = split_domain_port(forwarded_host)
        if domain and validate_host(domain, settings.ALLOWED_HOSTS):
            host = forwarded_host
    return f"{scheme}://{host}"
