"""A cap on how many of a costly operation each client runs at once, per worker.

The rate limit counts requests per minute, whatever they cost: a client well within it can
still keep a worker's CPU busy with a few expensive calls at once, and every other client
on that worker waits (a thread doing CPU work holds the GIL the event loop needs too). So
a costly route takes one of its client's slots for as long as it runs, on the event loop,
and a call beyond the client's share is answered 429 at once, before any work is done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request

from app.api.deps import SettingsDep, TenantDep
from app.errors import TooManyInFlight

__all__ = ["ClientSlots", "fhir_export_slot"]


class ClientSlots:
    """Slots per client for one operation in this worker. Used only from the event loop,
    so it needs no lock."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._taken: dict[str, int] = {}

    def take(self, client_id: str) -> bool:
        taken = self._taken.get(client_id, 0)
        if taken >= self.per_client:
            return False
        self._taken[client_id] = taken + 1
        return True

    def give_back(self, client_id: str) -> None:
        left = self._taken.pop(client_id) - 1
        if left:
            self._taken[client_id] = left

    def in_use(self, client_id: str) -> int:
        return self._taken.get(client_id, 0)


async def fhir_export_slot(
    request: Request, tenant: TenantDep, settings: SettingsDep
) -> AsyncIterator[None]:
    """Hold one of the client's FHIR export slots while the export runs."""
    slots: ClientSlots | None = getattr(request.app.state, "fhir_export_slots", None)
    if slots is None:
        slots = request.app.state.fhir_export_slots = ClientSlots(settings.fhir_exports_per_client)
    if not slots.take(tenant.client_id):
        raise TooManyInFlight("FHIR export pages", slots.per_client)
    try:
        yield
    finally:
        slots.give_back(tenant.client_id)
