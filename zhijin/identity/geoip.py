"""Where a client address is, for the step-up policy's distance and travel-speed rules.

The operator provides a city database in the MaxMind DB format (MaxMind's GeoIP2 or GeoLite2
City, or DB-IP's IP-to-City Lite) at `ZHIJIN_GEOIP_DB`, read with MaxMind's own reader; zhijin
ships none, since their licences and monthly updates are the operator's to choose.  Without
one, locations are unknown and the location rules, which say `if_missing: false`, never fire.

A location is only as good as the database says it is: an answer less precise than
LOCATION_ACCURACY_KM_MAX (a country's centroid, say) counts as unknown, so that a coarse
guess never makes a user "travel" 1,000 km between two logins from the same city.  Private,
loopback and other non-global addresses have no location.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

import maxminddb

from zhijin.chain.errors import ZhijinError
from zhijin.identity.stepup import GeoPoint

__all__ = ["LOCATION_ACCURACY_KM_MAX", "GeoLocator", "GeoipError"]

log = logging.getLogger("zhijin.identity.geoip")

LOCATION_ACCURACY_KM_MAX = 200
_LATITUDE_MAX = 90.0
_LONGITUDE_MAX = 180.0


class GeoipError(ZhijinError):
    code = "geoip_database_invalid"
    http_status = 500


class GeoLocator:
    """A city database, opened once (memory-mapped) and shared by every request."""

    def __init__(self, path: Path) -> None:
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoipError(message=f"cannot read the GeoIP database {path}: {exc}") from None
        kind = self._reader.metadata().database_type
        if "City" not in kind:
            self._reader.close()
            raise GeoipError(message=f"{path} is a {kind} database; locations need a City database")
        self.database_type = kind

    def locate(self, ip: str) -> GeoPoint | None:
        """The address's coordinates in micro-degrees, or None when not known well enough."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None  # "testclient", "unknown", a proxy's placeholder
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # how a dual-stack socket reports an IPv4 client
        if not address.is_global:
            return None
        try:
            record = self._reader.get(address)
        except (ValueError, maxminddb.InvalidDatabaseError):
            log.warning("the GeoIP database could not be read for an address")
            return None
        return _point(record)

    def close(self) -> None:
        self._reader.close()


def _point(record: Any) -> GeoPoint | None:
    location = record.get("location") if isinstance(record, dict) else None
    if not isinstance(location, dict):
        return None
    latitude, longitude = location.get("latitude"), location.get("longitude")
    accuracy_km = location.get("accuracy_radius")
    if not isinstance(latitude, int | float) or not isinstance(longitude, int | float):
        return None
    if accuracy_km is not None and (
        not isinstance(accuracy_km, int) or accuracy_km > LOCATION_ACCURACY_KM_MAX
    ):
        return None  # MaxMind says how precise it is; a database that does not is taken as is
    if abs(latitude) > _LATITUDE_MAX or abs(longitude) > _LONGITUDE_MAX:
        return None
    # Floats are fine here (no money): coordinates become whole micro-degrees.
    return GeoPoint(round(latitude * 1_000_000), round(longitude * 1_000_000))
