"""Hooks into the records service, so other parts (workflows, automations,
permissions) plug in without the records service importing them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# A hook gets (service, table, record_id, old_values, new_values) and may raise a
# CubebaseError to refuse the write; the transaction then writes nothing.
WriteHook = Callable[..., Any]


@dataclass
class RecordHooks:
    before_write: list[WriteHook] = field(default_factory=list)
    after_write: list[WriteHook] = field(default_factory=list)
    # (service, table, record_id, values) once a record is in the trash, in its transaction
    after_delete: list[WriteHook] = field(default_factory=list)
    # (session, schema, usage.Gone) -> [usage.Use]: the definitions of one kind that use
    # a field (or a table) about to be deleted; the schema editor (and an app-file plan)
    # refuses the delete naming each of them (see cubebase/platform/usage.py)
    deletion_users: list[Callable[..., Any]] = field(default_factory=list)
    # (session, old key, new key), in the rename's transaction: for what keeps table keys
    after_table_rename: list[Callable[..., Any]] = field(default_factory=list)

    def run_before(self, *args: Any) -> None:
        for hook in self.before_write:
            hook(*args)

    def run_after(self, *args: Any) -> None:
        for hook in self.after_write:
            hook(*args)
