"""Production settings with the benchmarks' urlconf on top (DJANGO_SETTINGS_MODULE=bench.server.settings)."""
from backend.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.server.urls"
