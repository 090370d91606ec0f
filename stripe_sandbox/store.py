"""All sandbox state, behind one lock, optionally kept in a JSON file across restarts.

Objects are stored as the plain dicts the API returns. Facts Stripe would not show
(which test card paid, when a bank debit settles) live beside them in `internal`.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from pathlib import Path

from .errors import resource_missing

# Stripe forgets idempotency keys after 24 hours; the SDK sends one with every POST.
IDEMPOTENCY_KEY_LIFETIME = 24 * 3600
# Enough delivery history for any test or demo, bounded for a long `make run`.
MAX_DELIVERY_RECORDS = 20_000


class Store:
    def __init__(self, state_file: str | None = None):
        self.lock = threading.RLock()
        self.state_file = Path(state_file) if state_file else None
        self._clear()
        if self.state_file and self.state_file.exists():
            self._load()

    def _clear(self) -> None:
        self.objects: dict[str, dict] = {}
        self.sequence: dict[str, int] = {}
        self.internal: dict[str, dict] = {}
        self.idempotency: dict[str, dict] = {}
        self.deliveries: list[dict] = []
        self.clock_offset = 0.0
        self.next_sequence = 0

    def reset(self) -> None:
        with self.lock:
            self._clear()
            self.save()

    # The sandbox clock: wall time moved forward by /_sandbox/clock/advance.
    def now(self) -> int:
        return int(time.time() + self.clock_offset)

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    def put(self, obj: dict, **internal) -> dict:
        with self.lock:
            if obj["id"] not in self.sequence:
                self.next_sequence += 1
                self.sequence[obj["id"]] = self.next_sequence
            self.objects[obj["id"]] = obj
            self.internal.setdefault(obj["id"], {}).update(internal)
            return obj

    def get(self, object_id: str, object_name: str, param: str = "id") -> dict:
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != object_name:
            raise resource_missing(object_name, object_id, param)
        return obj

    def find(self, object_id: str | None) -> dict | None:
        return self.objects.get(object_id) if object_id else None

    def newest_first(self, object_name: str) -> list[dict]:
        with self.lock:
            matching = [obj for obj in self.objects.values() if obj["object"] == object_name]
            return sorted(matching, key=lambda obj: self.sequence[obj["id"]], reverse=True)

    def remember_idempotent_response(self, scoped_key: str, response: dict) -> None:
        with self.lock:
            now = time.time()
            if len(self.idempotency) % 100 == 0:
                self.idempotency = {key: saved for key, saved in self.idempotency.items()
                                    if now - saved["saved_at"] < IDEMPOTENCY_KEY_LIFETIME}
            self.idempotency[scoped_key] = {**response, "saved_at": now}
            self.save()

    def record_delivery(self, attempt: dict) -> None:
        with self.lock:
            self.deliveries.append(attempt)
            if len(self.deliveries) > MAX_DELIVERY_RECORDS:
                del self.deliveries[:len(self.deliveries) - MAX_DELIVERY_RECORDS]

    def snapshot(self, obj: dict) -> dict:
        return copy.deepcopy(obj)

    def save(self) -> None:
        if not self.state_file:
            return
        with self.lock:
            state = {"objects": self.objects, "sequence": self.sequence,
                     "internal": self.internal, "idempotency": self.idempotency,
                     "deliveries": self.deliveries, "clock_offset": self.clock_offset,
                     "next_sequence": self.next_sequence}
            temporary = self.state_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(state))
            os.replace(temporary, self.state_file)  # atomic: a crash never leaves half a file

    def _load(self) -> None:
        state = json.loads(self.state_file.read_text())
        self.objects = state["objects"]
        self.sequence = state["sequence"]
        self.internal = state["internal"]
        self.idempotency = state["idempotency"]
        self.deliveries = state["deliveries"]
        self.clock_offset = state["clock_offset"]
        self.next_sequence = state["next_sequence"]
