"""Reading Prometheus' text format in tests."""
from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels) -> float:
    """The sum of samples called `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total
