"""The records service: the only road to user data.

Pages, the API, imports, exports, reports, workflows and automations all read
and write records through this class, which validates every value (one message
per field), keeps ``version`` for optimistic locking, writes the history in the
same transaction, keeps created/updated at/by, and moves deleted records to the
trash. Each write runs in a SAVEPOINT: when it fails, nothing of it is written
and the caller's transaction stays usable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from ..access import Access
from ..actor import Actor
from ..formulas import FormulaRuntime
from ..schema import Table
from .aggregating import Aggregating
from .plans import TablePlan
from .reading import Reading
from .rights import RightsReading
from .storage import Storage
from .writing import Writing


class RecordsService(Reading, RightsReading, Writing, Aggregating, Storage):
    # The time TODAY() and NOW() read (an aware datetime); None: the real time. A
    # scheduled automation's run sets it to its due time, so a run that starts late
    # still sees the day it was due (and tests with a fixed clock are deterministic).
    # Audit times (created/updated at, history) stay the real time.
    clock: Callable[[], datetime] | None = None

    def __init__(self, session: Session, actor: Actor, platform):
        self.session = session
        self.actor = actor
        self.platform = platform
        self.schema = platform.schema(session)
        self._plans: dict[int, TablePlan] = {}
        self.formulas = FormulaRuntime(self)
        self.access = Access(self)
        self._system: RecordsService | None = None

    def system(self) -> RecordsService:
        """The same session as the platform itself, for admin-defined formulas
        (defaults, validation rules, formula fields) that run in system context."""
        if self.actor.system:
            return self
        if self._system is None:
            self._system = RecordsService(self.session, Actor.system_actor(), self.platform)
        self._system.clock = self.clock
        return self._system

    def _plan(self, table: Table) -> TablePlan:
        plan = self._plans.get(id(table))
        if plan is None or plan.table is not table:
            hidden, _ = self.access.hidden_fields(table)
            # shared by every service of this schema snapshot that hides the same fields
            key = ("plan", table.id, hidden)
            plan = self.schema.formula_cache.get(key)
            if plan is None or plan.table is not table:
                plan = self.schema.formula_cache[key] = TablePlan(table, hidden)
            self._plans[id(table)] = plan
        return plan

    def table(self, key: str) -> Table:
        return self.schema.table(key)
