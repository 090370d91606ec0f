"""GET /metrics: Prometheus' text format; Bearer METRICS_TOKEN when that is set (the same
token shows /api/health/ready's details).

A plain Django view (the text exposition, not JSON), served beside the NinjaAPI. It hands
the operations service to the metrics registry as the source of the state gauges.
"""
import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from backend.observability.metrics import exposition, state_source_register
from backend.services.operations import operations_state

state_source_register(operations_state)


def metrics_authorized(request) -> bool:
    """Whether the request carries `Authorization: Bearer METRICS_TOKEN` (any request while the
    token is empty, which `check --deploy` warns about). Also guards readiness details."""
    token = settings.METRICS_TOKEN
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@require_GET
def metrics_view(request):
    if not metrics_authorized(request):
        response = JsonResponse({"detail": "A valid metrics bearer token is required", "code": "not_authenticated"},
                                status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)
