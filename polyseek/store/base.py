"""Store interface: where assets, units and their vectors live.

The one required method is `write`, which makes a batch of assets visible atomically (each asset's
units replace its previous units in a single commit). Reads are helpers on the concrete store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..types import Asset, Unit


@dataclass
class EncodedAsset:
    """An asset with its units and one vector array per vector field (rows align with `units`)."""

    asset: Asset
    units: list[Unit]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    local: list[tuple[str, Any]] = field(default_factory=list)  # (unit id, LocalFeatures) for the instance index


class Store:
    def write(self, batch: Sequence[EncodedAsset]) -> None:  # the one required method
        raise NotImplementedError
