"""The ``[history]`` section of the agent's config."""

from __future__ import annotations

from typing import Annotated

import msgspec


class HistorySection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """On-device history (docs/history.md); on by default, bounded by ``max_mb``."""

    enabled: bool = True
    minute_days: Annotated[float, msgspec.Meta(gt=0, le=366)] = 30.0  # per-minute rows kept this long
    hour_days: Annotated[float, msgspec.Meta(gt=0, le=3660)] = 730.0  # per-hour rows kept this long
    # 30 days of minutes of the reference plant: ~380 MB (docs/history.md); oldest minutes go first
    max_mb: Annotated[float, msgspec.Meta(ge=1)] = 1024.0
    # one transaction this often (minutes, hour roll-ups, expiry): 10 min keeps the reference
    # plant at ~17 MB/day on the card; a SIGKILL or power cut loses at most this much trend
    commit_interval_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 600.0
