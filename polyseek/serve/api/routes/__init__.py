"""One router per concern: search, assets, index, status, ui."""
