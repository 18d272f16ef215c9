"""The records service: the only road to user data.

Pages, the API, imports, exports, reports, workflows and automations all read
and write records through ``RecordsService``, which validates every value (one
message per field), applies the actor's row and field rules and the lock rule,
keeps ``version`` for optimistic locking, writes the history in the same
transaction, keeps created/updated at/by, and moves deleted records to the
trash. Each write runs in a SAVEPOINT: when it fails, nothing of it is written
and the caller's transaction stays usable.

One module per part: ``service`` (the class), ``reading`` and ``writing`` (its
read and write paths), ``storage`` (rows into tables), ``plans`` (what is worked
out once and reused), ``values`` (records, pages, formula filters).
"""

from ..listing import Condition
from .aggregating import Groups
from .reading import MAX_PAGE
from .rights import Rights
from .service import RecordsService
from .storage import COPY_MIN_ROWS
from .values import FormulaFilter, Page, Record, Where
from .writing import BULK_CHUNK

__all__ = [
    "BULK_CHUNK",
    "COPY_MIN_ROWS",
    "MAX_PAGE",
    "Condition",
    "FormulaFilter",
    "Groups",
    "Page",
    "Record",
    "RecordsService",
    "Rights",
    "Where",
]
