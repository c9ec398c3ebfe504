"""Power usage effectiveness (PUE): facility energy / IT energy. Emissions use IT energy x PUE.

Presets carry their published source; every figure is a fleet-wide annual average, so a given
data centre may differ (docs/methodology.md).
"""

from __future__ import annotations

from footprint.carbon.regions import check_positive, region_provider
from footprint.errors import RegionError

#: ``pue="cloud"``: the provider's fleet-wide figure, chosen by the region's provider prefix.
CLOUD_PUE: dict[str, tuple[float, str]] = {
    "gcp": (
        1.09,
        "Google data centers, fleet-wide trailing-twelve-month PUE, 2024 "
        "(https://www.google.com/about/datacenters/efficiency/)",
    ),
    "aws": (
        1.15,
        "AWS global data-centre PUE, 2024 "
        "(https://sustainability.aboutamazon.com/products-services/aws-cloud)",
    ),
    "azure": (
        1.18,
        "Microsoft datacenter fleet average PUE, as on Microsoft's datacenter efficiency page "
        "(https://datacenters.microsoft.com/sustainability/efficiency/); year not stated there "
        "and figure unverified by footprint (docs/methodology.md)",
    ),
}

#: Recorded when no PUE was given.
DEFAULT_SOURCE = "default: 1.0 (IT energy only)"

#: ``pue="on-prem"``: industry average.
ON_PREM_PUE: tuple[float, str] = (
    1.56,
    "Uptime Institute Global Data Center Survey 2024, average annual PUE "
    "(https://uptimeinstitute.com/resources/research-and-reports)",
)

PRESETS = ("cloud", "on-prem")


def resolve_pue(pue: float | str | None, region: str | None = None) -> tuple[float, str]:
    """(PUE, its source) for a number >= 1 or a preset; ``region`` is the canonical region id.

    ``None`` means not given: 1.0, recorded as the default. A number, 1.0 included, is recorded
    as user-supplied. ``"cloud"`` needs a cloud region (``aws:``, ``gcp:``, ``azure:``) to pick
    the provider.
    """
    if pue is None:
        return 1.0, DEFAULT_SOURCE
    if isinstance(pue, str):
        preset = pue.strip().lower()
        if preset == "on-prem":
            return ON_PREM_PUE
        if preset == "cloud":
            provider = region_provider(region)
            if provider not in CLOUD_PUE:
                raise RegionError(
                    "pue='cloud' needs a cloud region to know the provider (region='aws:...', "
                    f"'gcp:...' or 'azure:...'), got region={region!r}; or pass a number, "
                    "e.g. pue=1.2"
                )
            return CLOUD_PUE[provider]
        raise RegionError(f"unknown pue preset {pue!r}: use {' or '.join(PRESETS)}, or a number")
    value = check_positive(pue, "pue", "a number >= 1.0, e.g. pue=1.2, or 'cloud' / 'on-prem'")
    if value < 1.0:
        raise RegionError(
            f"pue must be >= 1.0 (facility energy cannot be less than IT energy), not {value!r}"
        )
    return value, "user-supplied" if value != 1.0 else "user-supplied: 1.0 (IT energy only)"
