"""Settings of the behavioural detectors (defaults measured on YelpZip: docs/behaviour.md)."""
from __future__ import annotations

from dataclasses import dataclass

DAY = 86400.0
HOUR = 3600.0


@dataclass(frozen=True)
class BehaviourConfig:
    """Behavioural detection settings.

    Coordinated groups: two authors are *linked* when they reviewed at least ``min_shared_products``
    of the same products, each pair of their reviews of a product within ``window_days`` of each
    other, and all of those co-reviews within one span of ``window_days``. A group is a set of at
    least ``min_group_authors`` authors in which every author is linked to at least
    ``min_links`` others of the set (a k-core of the link graph). Only the reviews that make the
    links (the group's products, inside the window) carry the evidence; an author's other
    reviews do not.

    Velocity: an author's reviews within 1 hour and 24 hours of a review (centred windows), against
    the population of author-days; evidence only from ``velocity_min_per_day`` reviews a day *and*
    above the population's ``velocity_quantile``; hourly from ``velocity_min_per_hour`` when the
    timestamps have sub-day resolution.

    Product bursts: a product's reviews within ``burst_window_days`` (centred) against its own
    average rate over the retention window (at least ``burst_min_baseline_days`` of it); a burst
    needs ``burst_min_reviews`` reviews, ``burst_min_ratio`` times the expected count and a Poisson
    z-score of ``burst_min_z``. Never a hold: a product alert.

    Shared client (optional metadata): ``client_min_accounts`` distinct accounts reviewing the same
    product through one device id or one hashed client prefix within ``window_days``; a prefix
    with more than ``client_max_prefix_accounts`` accounts in view is a shared network, never
    evidence.
    """

    window_days: float = 7.0
    min_shared_products: int = 3
    min_group_authors: int = 4
    min_links: int = 2
    max_neighbours: int = 400  # per review, co-reviews examined on one product (hot products stay linear)
    velocity_min_per_day: int = 15
    velocity_min_per_hour: int = 6
    velocity_quantile: float = 0.999
    burst_window_days: float = 7.0
    burst_min_reviews: int = 8
    burst_min_ratio: float = 4.0
    burst_min_z: float = 4.0
    burst_min_baseline_days: float = 56.0
    client_min_accounts: int = 4
    client_max_prefix_accounts: int = 50
    retention_days: int = 90

    def __post_init__(self):
        if self.window_days <= 0 or self.burst_window_days <= 0:
            raise ValueError("behaviour windows must be positive")
        if self.min_shared_products < 2 or self.min_group_authors < 2 or self.min_links < 1:
            raise ValueError("a coordinated group needs at least 2 shared products, 2 authors and 1 link")
        if not 0.5 <= self.velocity_quantile < 1.0:
            raise ValueError("velocity_quantile must be in [0.5, 1)")

    @property
    def version(self) -> str:
        return (f"behaviour-1.0.0/w{self.window_days:g}d-p{self.min_shared_products}-a{self.min_group_authors}"
                f"-k{self.min_links}-v{self.velocity_min_per_day}-b{self.burst_min_ratio:g}")
