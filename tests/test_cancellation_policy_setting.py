"""CANCELLATION_POLICY from the environment: tiers, most notice first, or a clear stop."""
import json
import subprocess
import sys

import pytest

from tests.test_settings import ROOT, a_secret, environment, manage


def policy_in_a_process(**env) -> list:
    code = ("import django, json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'backend.settings'; django.setup(); "
            "from django.conf import settings as s; print(json.dumps(s.CANCELLATION_POLICY))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment(DJANGO_SECRET_KEY=a_secret(), **env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_default_is_a_full_refund_up_to_refund_cutoff_hours():
    assert policy_in_a_process(CANCELLATION_POLICY=None, REFUND_CUTOFF_HOURS="36") == [
        {"min_hours_before": 36, "refund_percent": 100}]


def test_tiers_are_read_most_notice_first():
    assert policy_in_a_process(CANCELLATION_POLICY="2:50, 24:100,0:0") == [
        {"min_hours_before": 24, "refund_percent": 100}, {"min_hours_before": 2, "refund_percent": 50},
        {"min_hours_before": 0, "refund_percent": 0}]


@pytest.mark.parametrize("bad", ["24", "24:150", "a:b", "-1:50"])
def test_a_tier_that_is_not_hours_colon_percent_stops_the_process(bad):
    result = manage("check", DJANGO_SECRET_KEY=a_secret(), CANCELLATION_POLICY=bad)
    assert result.returncode != 0 and "CANCELLATION_POLICY" in result.stderr
