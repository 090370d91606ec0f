"""List endpoints: `created` filters, cursor pagination as Stripe pages, and `expand`."""

from __future__ import annotations

from typing import Callable

from . import objects
from .errors import StripeApiError, parameter_invalid, resource_missing
from .store import Store

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def created_matches(created: int, condition) -> bool:
    if condition is None or condition == "":
        return True
    if isinstance(condition, int):
        return created == condition
    checks = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__,
              "lte": created.__le__}
    return all(checks[operator](bound) for operator, bound in condition.items())


def page(store: Store, items: list[dict], params: dict, url: str, object_name: str) -> dict:
    """One page of `items` (newest first), as Stripe's list object."""
    limit = params.get("limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise parameter_invalid("limit", f"This value must be greater than or equal to 1 and less "
                                         f"than or equal to {MAX_LIMIT}.")
    starting_after, ending_before = params.get("starting_after"), params.get("ending_before")
    if starting_after and ending_before:
        raise StripeApiError(400, "You may only specify one of these parameters: ending_before, "
                                  "starting_after.", param="ending_before")
    items = [item for item in items if created_matches(item["created"], params.get("created"))]
    if starting_after:
        index = _cursor_index(store, items, starting_after, object_name, "starting_after")
        following = items[index + 1:]
        return objects.list_object(following[:limit], len(following) > limit, url)
    if ending_before:
        index = _cursor_index(store, items, ending_before, object_name, "ending_before")
        preceding = items[:index]
        return objects.list_object(preceding[-limit:], len(preceding) > limit, url)
    return objects.list_object(items[:limit], len(items) > limit, url)


def page_of_sublist(items: list[dict], params: dict, url: str, object_name: str) -> dict:
    """One page of a list that belongs to one object (a session's line items)."""
    limit = params.get("limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise parameter_invalid("limit", f"This value must be greater than or equal to 1 and less "
                                         f"than or equal to {MAX_LIMIT}.")
    ids = [item["id"] for item in items]
    for param in ("starting_after", "ending_before"):
        if params.get(param) and params[param] not in ids:
            raise resource_missing(object_name, params[param], param)
    if params.get("starting_after"):
        following = items[ids.index(params["starting_after"]) + 1:]
        return objects.list_object(following[:limit], len(following) > limit, url)
    if params.get("ending_before"):
        preceding = items[:ids.index(params["ending_before"])]
        return objects.list_object(preceding[-limit:], len(preceding) > limit, url)
    return objects.list_object(items[:limit], len(items) > limit, url)


def _cursor_index(store: Store, items: list[dict], cursor: str, object_name: str, param: str) -> int:
    cursor_object = store.find(cursor)
    if cursor_object is None or cursor_object["object"] != object_name:
        raise resource_missing(object_name, cursor, param)
    sequence = store.sequence[cursor]
    # The cursor may itself be filtered out; page from where it would sit.
    for index, item in enumerate(items):
        if store.sequence[item["id"]] == sequence:
            return index
        if store.sequence[item["id"]] < sequence:
            return index - 1 if param == "starting_after" else index
    return len(items) - 1 if param == "starting_after" else len(items)


# Fields that hold the id of another object and may be expanded, per object type.
# `line_items` of a session is "includable": absent unless expanded.
ExpandLoader = Callable[[Store, dict], object]
EXPANDABLE: dict[str, dict[str, ExpandLoader | None]] = {
    "checkout.session": {"payment_intent": None, "customer": None, "invoice": None,
                         "line_items": lambda store, session: objects.list_object(
                             store.internal[session["id"]]["line_items"], False,
                             f"/v1/checkout/sessions/{session['id']}/line_items")},
    "payment_intent": {"latest_charge": None, "payment_method": None, "customer": None},
    "charge": {"payment_intent": None, "payment_method": None, "balance_transaction": None,
               "customer": None},
    "refund": {"charge": None, "payment_intent": None, "balance_transaction": None},
    "dispute": {"charge": None, "payment_intent": None},
}


def expand(store: Store, obj: dict, paths: list[str]) -> dict:
    """A copy of `obj` with each dotted path in `paths` replaced by the object it names."""
    result = store.snapshot(obj)
    for path in paths or []:
        _expand_path(store, result, path.split("."), path)
    return result


def _expand_path(store: Store, target: dict, parts: list[str], full_path: str) -> None:
    if target.get("object") == "list" and parts[0] == "data":
        for item in target["data"]:
            _expand_path(store, item, parts[1:], full_path)
        return
    if not parts:
        return
    field = parts[0]
    loaders = EXPANDABLE.get(target.get("object"), {})
    if field not in loaders:
        raise parameter_invalid("expand", f"This property cannot be expanded ({full_path}).")
    loader = loaders[field]
    if loader is not None:
        target[field] = loader(store, target)
    elif isinstance(target.get(field), str):
        related = store.find(target[field])
        if related is not None:
            target[field] = store.snapshot(related)
    if isinstance(target.get(field), dict) and len(parts) > 1:
        _expand_path(store, target[field], parts[1:], full_path)
