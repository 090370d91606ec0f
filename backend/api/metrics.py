"""GET /metrics: Prometheus' text format; Bearer METRICS_TOKEN when that is set.

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


@require_GET
def metrics_view(request):
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = JsonResponse({"detail": "A valid metrics bearer token is required", "code": "not_authenticated"},
                                    status=401)
            response["WWW-Authenticate"] = "Bearer"
            return response
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)
