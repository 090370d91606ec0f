"""backend.urls plus the baselines the webhook is measured against, on the same server:

- `POST /bench/bare`: a ninja endpoint that reads nothing and answers {}.
- `POST /bench/floor`: reads the body and stores it with one autocommit
  `INSERT ... ON CONFLICT DO NOTHING` (a fresh id each time): the least an endpoint that
  must store before it answers can do.
"""
import uuid

from django.db import connection
from django.urls import path
from ninja import NinjaAPI

from backend.models import WebhookEvent
from backend.urls import urlpatterns as production_urlpatterns

bench_api = NinjaAPI(urls_namespace="bench", docs_url=None, openapi_url=None)

_FLOOR_INSERT = f"""
INSERT INTO {WebhookEvent._meta.db_table}
    (stripe_event_id, type, api_version, livemode, payload, status, attempts, last_error, received_at, updated_at)
VALUES (%s, 'bench.floor', '', false, %s, 'ignored', 0, '', now(), now())
ON CONFLICT (stripe_event_id) DO NOTHING
"""


@bench_api.post("/bare", auth=None)
def bare(request):
    return {}


@bench_api.post("/floor", auth=None)
def floor(request):
    with connection.cursor() as cursor:
        cursor.execute(_FLOOR_INSERT, [f"floor_{uuid.uuid4().hex}", request.body.decode()])
    return {}


urlpatterns = [*production_urlpatterns, path("bench/", bench_api.urls)]
