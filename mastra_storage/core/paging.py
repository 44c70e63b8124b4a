"""Offset pagination with Mastra's rules (reference §2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from ..types import PerPage
from .validate import check_page


@dataclass(frozen=True)
class Window:
    """A validated page request: ``limit`` is None when ``per_page`` is False (all rows)."""

    page: int
    per_page: PerPage
    offset: int
    limit: int | None

    def has_more(self, total: int) -> bool:
        return self.limit is not None and self.offset + self.limit < total

    def page_fields(self, total: int) -> dict[str, Any]:
        """``total``, ``page``, ``per_page`` and ``has_more`` of a list result for this window."""
        return {"total": total, "page": self.page, "per_page": self.per_page, "has_more": self.has_more(total)}


def window(page: object, per_page: object) -> Window:
    page_, per_page_ = check_page(page, per_page)
    if per_page_ is False:
        if page_ != 0:
            raise ValidationError("page must be 0 when perPage is false", status="INVALID_PAGE")
        return Window(0, False, 0, None)
    return Window(page_, per_page_, page_ * per_page_, per_page_)
