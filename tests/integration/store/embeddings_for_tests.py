"""An embeddings function a store's ``index`` can name by reference."""

from __future__ import annotations

from .conftest import letters

__all__ = ["letters"]
