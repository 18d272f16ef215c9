"""The history of an instance (events, with a sentence each), notifications, and
jobs scheduled once the transaction commits."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..platform.actor import Actor
from .models import Event, Notification
from .states import add_once, aware


class Events:
    """History and notifications (a part of ``WorkflowEngine``)."""

    # --- history, notifications ---------------------------------------------------------
    def _event(
        self,
        session,
        inst,
        task_id,
        action,
        to_step,
        actor,
        on_behalf,
        comment,
        changes,
        now,
        *,
        step=None,
    ) -> None:
        session.add(
            Event(
                instance_id=inst.id,
                task_id=task_id,
                step=step if step is not None else inst.step,
                action=action,
                to_step=to_step,
                actor_id=actor.user_id if actor is not None else None,
                on_behalf_of=on_behalf,
                comment=comment,
                changes=changes,
                at=now,
            )
        )

    def history(self, session: Session, instance_id: int) -> list[dict[str, Any]]:
        """The instance's events, oldest first, each with a sentence."""
        events = session.scalars(
            sa.select(Event).where(Event.instance_id == instance_id).order_by(Event.id)
        ).all()
        ids = {e.actor_id for e in events} | {e.on_behalf_of for e in events}
        names = self._names(session, {i for i in ids if i is not None})
        out = []
        for e in events:
            who = names.get(e.actor_id, "the system") if e.actor_id else "the system"
            verb = {
                "approve": "approved",
                "reject": "rejected",
                "submit": "submitted",
                "start": "started",
                "cancel": "cancelled",
                "return": "returned",
                "reassign": "reassigned",
                "escalate": "escalated",
                "migrate": "moved to a new version",
            }.get(e.action, e.action)
            text = f"{verb} by {who}"
            if e.on_behalf_of:
                text += f" for {names.get(e.on_behalf_of, e.on_behalf_of)}"
            out.append(
                {
                    "id": e.id,
                    "step": e.step,
                    "action": e.action,
                    "to_step": e.to_step,
                    "actor_id": e.actor_id,
                    "on_behalf_of": e.on_behalf_of,
                    "comment": e.comment,
                    "changes": e.changes,
                    "at": aware(e.at).isoformat(),
                    "text": text,
                }
            )
        return out

    def _names(self, session, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        system = self.platform.records(session, Actor.system_actor())
        page = system.list(
            "users",
            where=lambda t: t.sql.c.id.in_(sorted(ids)),
            limit=500,
            fields=["name", "email"],
        )
        return {r.id: r.values.get("name") or r.values.get("email") for r in page.records}

    def notify(self, session, user_id, kind, task, key, now, *, comment=None, subject=None):
        """An in-app notification (and an e-mail when SMTP is set); ``key`` is unique, so
        the same notification is never made twice."""
        from .jobs import notification_text

        subject, body = notification_text(self, session, kind, task, comment, subject)
        made = add_once(
            session,
            Notification(
                key=key,
                user_id=user_id,
                kind=kind,
                task_id=task.id if task is not None else None,
                subject=subject,
                body=body,
                created_at=now,
                email_status="pending" if self.platform.config.smtp.get("host") else "none",
            ),
        )
        if not made:
            return False
        self._after_commit(session, ("mail",))
        return True

    def _after_commit(self, session: Session, item: tuple) -> None:
        """Jobs to schedule once the transaction commits (never before the data is there)."""
        if self.jobs is None:
            return
        pending = session.info.get("cb_wf_jobs")
        if pending is None:
            pending = session.info["cb_wf_jobs"] = []
            jobs = self.jobs

            def committed(sess):
                items = sess.info.pop("cb_wf_jobs", [])
                if items:
                    jobs.after_commit(items)

            def rolled_back(sess):
                sess.info.pop("cb_wf_jobs", None)

            sa.event.listen(session, "after_commit", committed, once=True)
            sa.event.listen(session, "after_rollback", rolled_back, once=True)
        pending.append(item)
