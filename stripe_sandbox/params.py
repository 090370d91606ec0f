"""Request validation derived from the installed SDK's typed params (`stripe.params`).

The SDK's TypedDicts are generated from Stripe's OpenAPI spec, so walking them gives
the names Stripe accepts and the ones it requires: an unknown name is a 400 naming
it, a missing required one a 400 too, as on Stripe. Values are coerced to int/bool
where the spec says so; everything else stays a string.
"""

from __future__ import annotations

import decimal
import functools
import sys
import typing
from dataclasses import dataclass, field

import stripe.params as sdk_params
import typing_extensions
from stripe._request_options import RequestOptions

from .errors import StripeApiError, parameter_invalid, parameter_missing, parameter_unknown
from .forms import indexed_dict_as_list

# RequestOptions keys (api_key, idempotency_key...) travel as headers, never as params.
_REQUEST_OPTION_KEYS = frozenset(RequestOptions.__annotations__)


@dataclass
class Node:
    kind: str  # object | list | map | int | bool | decimal | str | any
    fields: dict[str, tuple[bool, "Node"]] = field(default_factory=dict)
    item: "Node | None" = None
    # An object/list/map field that also accepts a scalar (`created=123` or `""` to unset).
    scalar: "Node | None" = None


_ANY = Node("any")


@functools.lru_cache(maxsize=None)
def schema_for(params_class_name: str) -> Node:
    """Schema of one SDK params TypedDict, e.g. "SessionCreateParams" (checkout) or
    "RefundCreateParams"."""
    owner = sdk_params
    if "." in params_class_name:
        namespace, params_class_name = params_class_name.split(".")
        owner = getattr(sdk_params, namespace)
    return _typed_dict_node(getattr(owner, params_class_name), top_level=True)


_typed_dict_cache: dict[type, Node] = {}


def _typed_dict_node(cls: type, top_level: bool = False) -> Node:
    if cls in _typed_dict_cache:
        return _typed_dict_cache[cls]
    node = Node("object")
    _typed_dict_cache[cls] = node  # registered before recursing: the SDK types may nest
    namespace = vars(sys.modules[cls.__module__])
    for name, annotation in cls.__annotations__.items():
        if top_level and name in _REQUEST_OPTION_KEYS:
            continue
        required = name in cls.__required_keys__
        node.fields[name] = (required, _annotation_node(annotation, namespace))
    return node


def _annotation_node(annotation, namespace) -> Node:
    if isinstance(annotation, str):
        annotation = typing.ForwardRef(annotation)
    if isinstance(annotation, typing.ForwardRef):
        try:
            annotation = eval(annotation.__forward_arg__, dict(namespace))  # the SDK's own source
        except Exception:
            return _ANY
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.NotRequired, typing.Required, typing_extensions.NotRequired,
                  typing_extensions.Required):
        return _annotation_node(args[0], namespace)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        nodes = [_annotation_node(arg, namespace) for arg in args if arg is not type(None)]
        structured = [n for n in nodes if n.kind in ("object", "list", "map")]
        scalars = [n for n in nodes if n.kind not in ("object", "list", "map")]
        if not structured:
            return scalars[0] if len(scalars) == 1 else Node("str")
        chosen = structured[0]
        if scalars:
            return Node(chosen.kind, chosen.fields, chosen.item, scalars[0])
        return chosen
    if origin in (list, typing.List):
        return Node("list", item=_annotation_node(args[0], namespace) if args else _ANY)
    if origin in (dict, typing.Dict) or getattr(origin, "__name__", "") == "UntypedStripeObject":
        return Node("map")
    if getattr(annotation, "__name__", "") == "UntypedStripeObject":
        return Node("map")
    if origin in (typing.Literal, typing_extensions.Literal):
        return Node("str")
    if typing_extensions.is_typeddict(annotation):
        return _typed_dict_node(annotation)
    if annotation is bool:
        return Node("bool")
    if annotation is int:
        return Node("int")
    if annotation in (float, decimal.Decimal):
        return Node("decimal")
    if annotation is str:
        return Node("str")
    return _ANY


def validate(params: dict, schema: Node) -> dict:
    """Check `params` (decoded form) against `schema`; return them with typed values."""
    return _validate_object(params, schema, prefix="")


def _path(prefix: str, name: str) -> str:
    return f"{prefix}[{name}]" if prefix else name


def _validate_object(value: dict, node: Node, prefix: str) -> dict:
    result = {}
    for name, item in value.items():
        if name not in node.fields:
            raise parameter_unknown(_path(prefix, name))
        result[name] = _validate_value(item, node.fields[name][1], _path(prefix, name))
    for name, (required, _) in node.fields.items():
        if required and name not in value:
            raise parameter_missing(_path(prefix, name))
    return result


def _validate_value(value, node: Node, path: str):
    if node.kind in ("object", "list", "map"):
        if not isinstance(value, dict):
            if node.scalar is not None:
                return _validate_value(value, node.scalar, path)
            if value == "":
                return ""  # Stripe's way of unsetting a field
            raise parameter_invalid(path, f"Invalid {'array' if node.kind == 'list' else 'object'}",
                                    code="parameter_invalid_empty" if value == "" else "parameter_invalid")
        if node.kind == "object":
            return _validate_object(value, node, path)
        if node.kind == "map":
            return {key: item for key, item in value.items()}
        as_list = indexed_dict_as_list(value)
        if as_list is None:
            raise parameter_invalid(path, "Invalid array")
        return [_validate_value(item, node.item or _ANY, f"{path}[{index}]")
                for index, item in enumerate(as_list)]
    if isinstance(value, dict):
        if node.kind == "any":
            return value
        raise parameter_invalid(path, f"Invalid {node.kind}: expected a value, not an object")
    if node.kind == "int":
        try:
            return int(value)
        except ValueError:
            raise parameter_invalid(path, f"Invalid integer: {value}", code="parameter_invalid_integer")
    if node.kind == "bool":
        if value in ("true", "false"):
            return value == "true"
        raise parameter_invalid(path, f"Invalid boolean: {value}")
    if node.kind == "decimal":
        try:
            decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise parameter_invalid(path, f"Invalid decimal: {value}")
    return value


def require_one_of(params: dict, *names: str) -> None:
    if not any(params.get(name) for name in names):
        raise StripeApiError(
            400, f"One of the following params should be provided for this request: "
                 f"{' or '.join(names)}.", code="parameter_missing", param=names[0])
