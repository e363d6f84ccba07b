"""Paging and row-id parameters, their bounds declared once.

SQLite integers are signed 64-bit: a number of 2**63 or more reaching a query raises
OverflowError, which would be a 500. Every offset and numeric id the API takes is bounded here,
so such a number is a 422 that names the parameter.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_OFFSET = 2**31  # far past any history this server will hold
MAX_ROW_ID = 2**62

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="skip this many (newest first)")]
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
