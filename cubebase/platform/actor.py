"""Who is acting: passed explicitly to every service call (no request globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    roles: frozenset[str] = field(default_factory=frozenset)
    email: str | None = None
    system: bool = False  # the platform itself: installs, migrations, admin-defined formulas

    @property
    def is_admin(self) -> bool:
        return self.system or ADMIN_ROLE in self.roles

    @classmethod
    def system_actor(cls) -> Actor:
        return cls(user_id=None, roles=frozenset({ADMIN_ROLE}), system=True)

    def label(self) -> str:
        return "system" if self.system else (self.email or f"user {self.user_id}")
