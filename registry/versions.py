"""Semantic versions: parsing, ordering (`1.10.0` after `1.9.0`) and the next automatic version."""

from __future__ import annotations

import re
from typing import NamedTuple

from registry.errors import InvalidNameError

# MAJOR[.MINOR[.PATCH]][-label]: the original registry API's "1.0" and semantic "1.2.3-rc1" both fit.
# ASCII digits only and matched with fullmatch: `\d` accepts other scripts' digits and `$` a trailing newline.
VERSION_PATTERN = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,9}))?(?:\.([0-9]{1,9}))?(?:-([0-9A-Za-z][0-9A-Za-z.]{0,31}))?")


class Version(NamedTuple):
    """A parsed version; tuple order is semantic order (a release sorts after its labelled pre-releases)."""

    major: int
    minor: int
    patch: int
    label: str  # "" for a release

    @property
    def sort_key(self) -> tuple[int, int, int, int, str]:
        """Key that orders releases after their pre-releases."""
        return (self.major, self.minor, self.patch, 0 if self.label else 1, self.label)


def parse_version(text: str) -> Version:
    """Parse `MAJOR[.MINOR[.PATCH]][-label]`, raising InvalidNameError naming the bad version."""
    match = VERSION_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None or ".." in text:
        raise InvalidNameError(
            f"invalid version {text!r}: expected MAJOR[.MINOR[.PATCH]][-label], e.g. '1.2.0' or '2.0.0-rc1'"
        )
    major, minor, patch, label = match.groups()
    return Version(int(major), int(minor or 0), int(patch or 0), label or "")


def next_version(latest: Version | None) -> str:
    """The version the registry allocates after `latest`: first `1.0.0`, then a minor bump."""
    if latest is None:
        return "1.0.0"
    return f"{latest.major}.{latest.minor + 1}.0"
