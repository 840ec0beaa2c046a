"""SQL for the registry, by concern: `locking` (per-name locks, version allocation), `writes` (registration
rows, status changes, the production swap, deletion), `queries` (ModelInfo reads and the filter compiler),
`history` (the event log), `cleanup` (archive, purge and orphan-sweep statements), `approvals` (approval
requests and their decision), `predictions` (the daily scores), `pages` (the web page's reads). Functions take
the unit of work's session (or, for single-statement reads, a Core connection) and return plain values: ORM
rows and `Row`s never leave this package. No module here imports the registry's service, views or compat.
"""

from registry.store.common import PRODUCTION, EventSpec, row_limit, status_literal
from registry.store.history import events, previous_production_ids, production_at
from registry.store.locking import (
    LockedName,
    RegistrationContext,
    lock_for_registration,
    lock_name,
    lock_name_of,
    uncount_registration,
    version_taken,
)
from registry.store.queries import (
    INFO_BY_PK,
    PRODUCTION_INFO,
    PRODUCTION_INFOS,
    artifact_checksum,
    existing_ids,
    filter_query,
    info_by_model_id,
    name_and_status,
    read_infos,
    read_series,
)
from registry.store.writes import (
    PromotionRows,
    VersionState,
    add_event,
    delete_row,
    get_state,
    insert_model,
    insert_series,
    promotion_rows,
    set_awaiting_approval,
    set_previous_production,
    set_status,
    swap_production,
)

__all__ = [
    "INFO_BY_PK",
    "PRODUCTION",
    "PRODUCTION_INFO",
    "PRODUCTION_INFOS",
    "EventSpec",
    "LockedName",
    "PromotionRows",
    "RegistrationContext",
    "VersionState",
    "add_event",
    "artifact_checksum",
    "delete_row",
    "events",
    "existing_ids",
    "filter_query",
    "get_state",
    "info_by_model_id",
    "insert_model",
    "insert_series",
    "lock_for_registration",
    "lock_name",
    "lock_name_of",
    "name_and_status",
    "previous_production_ids",
    "production_at",
    "promotion_rows",
    "read_infos",
    "read_series",
    "row_limit",
    "set_awaiting_approval",
    "set_previous_production",
    "set_status",
    "status_literal",
    "swap_production",
    "uncount_registration",
    "version_taken",
]
