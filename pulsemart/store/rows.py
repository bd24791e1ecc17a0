"""The row a statement always returns, typed as present.

psycopg types `fetchone()` as "a row or None", which is right in general; an aggregate, a
`nextval()`, a `select ... for update` of a row just inserted, or `insert ... returning` always
return exactly one. `one_row` says so at the call site, and fails loudly if it is ever wrong.
"""

from __future__ import annotations

from typing import TypeVar

import psycopg

Row = TypeVar("Row")


class NoRowError(psycopg.DataError):
    """A statement that always returns a row returned none."""


def one_row(cursor: psycopg.Cursor[Row]) -> Row:
    row = cursor.fetchone()
    if row is None:
        raise NoRowError("a statement that always returns a row returned none")
    return row


async def one_row_async(cursor: psycopg.AsyncCursor[Row]) -> Row:
    row = await cursor.fetchone()
    if row is None:
        raise NoRowError("a statement that always returns a row returned none")
    return row
