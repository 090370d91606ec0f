"""GET /metrics: Prometheus' text format; Bearer METRICS_TOKEN when that is set."""
import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from backend.observability.metrics import exposition


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
