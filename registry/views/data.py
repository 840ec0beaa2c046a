"""A data directory's data versions for the web page, with the one a model's data version links to (two
statements): `/data?version=YYYY-MM-DD/<fingerprint>` or `/data?dir=<data directory>`."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection

from registry.data_versions import DataVersionRecord
from registry.errors import InvalidArgumentError
from registry.store import pages
from registry.store.pages import DATA_VERSIONS_SHOWN

if TYPE_CHECKING:
    from registry.service import ModelRegistry


class UnknownDataVersion(LookupError):
    """No data version record matches; the message names what was asked for."""


class DataPage(BaseModel):
    """A data directory's data versions, newest first; `linked` is the one the request named (if any)."""

    model_config = ConfigDict(frozen=True)

    data_dir: str
    versions: list[DataVersionRecord]  # the newest DATA_VERSIONS_SHOWN, plus the linked one when it is older
    linked: DataVersionRecord | None


def parse_data_version(text: str) -> tuple[date | None, str]:
    """`YYYY-MM-DD/<fingerprint>` (the string models are tagged with) as (calendar end, fingerprint);
    InvalidArgumentError when `text` is not one."""
    day, sep, fingerprint = text.partition("/")
    try:
        if not sep or not fingerprint or "/" in fingerprint or "\x00" in fingerprint:
            raise ValueError(text)
        return (date.fromisoformat(day) if day else None), fingerprint
    except ValueError:
        raise InvalidArgumentError(f"not a data version: {text!r} (expected YYYY-MM-DD/<fingerprint>)") from None


def find_data_version(connection: Connection, version: str) -> DataVersionRecord | None:
    """The newest record of the data version `version` (a string as models record it), or None when no ingest
    recorded it (or it is not a data version string)."""
    try:
        day, fingerprint = parse_data_version(version)
    except InvalidArgumentError:
        return None
    for row in pages.data_versions_with_fingerprint(connection, fingerprint):
        if row["calendar_end"] == day:
            return DataVersionRecord.model_validate(row)
    return None


def data_page(registry: ModelRegistry, *, data_dir: str | None = None, version: str | None = None) -> DataPage:
    """The data versions of `data_dir`, or of the directory of `version` with that one linked (exactly one
    of the two). UnknownDataVersion when the registry has no record of either."""
    if (data_dir is None) == (version is None):
        raise InvalidArgumentError("give either a data directory (dir) or a data version (version)")
    if version is not None:
        parse_data_version(version)

    def read(connection: Connection) -> DataPage:
        linked = find_data_version(connection, version) if version is not None else None
        if version is not None and linked is None:
            raise UnknownDataVersion(f"data version {version!r} is not recorded in the registry "
                                     "(only `qmp data ingest` records data versions)")
        directory = linked.data_dir if linked is not None else str(data_dir)
        rows = [] if "\x00" in directory else [
            DataVersionRecord.model_validate(row) for row in pages.data_versions_of_dir(connection, directory)]
        if not rows:
            raise UnknownDataVersion(f"data directory {directory!r} has no data version in the registry")
        if linked is not None and all(row.id != linked.id for row in rows):
            rows.append(linked)
        return DataPage(data_dir=directory, versions=rows, linked=linked)

    return registry.db.read(read)


__all__ = ["DATA_VERSIONS_SHOWN", "DataPage", "UnknownDataVersion", "data_page", "find_data_version",
           "parse_data_version"]
