"""This database's identity towards Stripe: the install id that namespaces idempotency
keys and tags our metadata, so two databases on one Stripe account never collide."""
import uuid

from backend.models import Checkout, Installation


def installation() -> Installation:
    """The one row; made by migration 0008, or here on first use after a flush."""
    row, _ = Installation.objects.get_or_create(pk=1, defaults={"install_id": uuid.uuid4().hex})
    return row


def idempotency_key(kind: str, object_id: int) -> str:
    """`{install_id}:{kind}:{id}`: `checkout:1` of a reset database is a new key for Stripe."""
    return f"{installation().install_id}:{kind}:{object_id}"


def stripe_metadata(**ids: object) -> dict[str, str]:
    """Metadata for what we create at Stripe: our ids and the install id."""
    return {"install_id": installation().install_id, **{name: str(value) for name, value in ids.items()}}


def stripe_metadata_is_ours(metadata: dict | None) -> bool:
    """Whether Stripe metadata belongs to this database. Objects made before the install id
    existed carry only our ids: ours if that Checkout exists here."""
    metadata = metadata or {}
    if metadata.get("install_id"):
        return metadata["install_id"] == installation().install_id
    checkout_id = str(metadata.get("checkout_id") or "")
    return checkout_id.isdigit() and Checkout.objects.filter(pk=int(checkout_id)).exists()
