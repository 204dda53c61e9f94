"""What the database gives the AI (`private.ai_context`), and how it reads as prompt text.

The text is split by how often it changes, because that decides what the prompt cache can
reuse: company + prompts + lessons change only when a prompt is made live; lead facts only
when someone edits the lead; the conversation, status and open slots change every turn.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_INTEREST = re.compile(
    r"\b(yes|yeah|yep|sure|ok|okay|interested|keen|still looking|tell me more|how much|price|"
    r"cost|quote|call|chat|talk|speak|available|availability|when|what time|book|appointment|"
    r"today|tomorrow|monday|tuesday|wednesday|thursday|friday|saturday|sunday|morning|"
    r"afternoon|evening|\d{1,2}(:\d{2})?\s*(am|pm))\b",
    re.I,
)


@dataclass(frozen=True)
class Message:
    id: str
    direction: str
    category: str
    content: str
    at: datetime
    ai_generated: bool
    by_staff: bool
    offered_slots: list[str]

    @classmethod
    def from_json(cls, m: dict[str, Any]) -> Message:
        return cls(
            id=m["id"],
            direction=m["direction"],
            category=m["category"],
            content=m["content"],
            at=_parse_time(m["at"]),
            ai_generated=bool(m.get("ai_generated")),
            by_staff=bool(m.get("by_staff")),
            offered_slots=list(m.get("offered_slots") or []),
        )

    @property
    def speaker(self) -> str:
        if self.direction == "inbound":
            return "Lead"
        if self.by_staff:
            return "Staff"
        if self.category in ("m1", "m2", "m3"):
            return f"You ({self.category.upper()} campaign message)"
        return "You"


@dataclass(frozen=True)
class ReplyContext:
    conversation_id: str
    ai_mode: str
    client_id: str
    company_name: str
    company_description: str | None
    client_timezone: str
    client_model: str | None
    booking_enabled: bool
    lead: dict[str, Any]
    dataset: dict[str, Any]
    messages: list[Message]
    prompt: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_json(cls, ctx: dict[str, Any]) -> ReplyContext:
        client = ctx["client"]
        if not ctx.get("prompt"):
            raise ValueError("the client has no live reply prompt")
        return cls(
            conversation_id=ctx["conversation"]["id"],
            ai_mode=ctx["conversation"]["ai_mode"],
            client_id=client["id"],
            company_name=client["name"],
            company_description=client.get("company_description"),
            client_timezone=client.get("timezone") or "Europe/London",
            client_model=client.get("anthropic_model"),
            booking_enabled=bool(client.get("booking_enabled", True)),
            lead=ctx["lead"],
            dataset=ctx["dataset"],
            messages=[Message.from_json(m) for m in ctx.get("messages") or []],
            prompt=ctx["prompt"],
            raw=ctx,
        )

    # ------------------------------------------------------------------ facts

    @property
    def lead_id(self) -> str:
        return self.lead["id"]

    @property
    def first_name(self) -> str:
        return (self.lead.get("first_name") or "").strip() or "there"

    @property
    def timezone(self) -> ZoneInfo:
        for name in (self.lead.get("timezone"), self.client_timezone, "Europe/London"):
            try:
                return ZoneInfo(name) if name else ZoneInfo("Europe/London")
            except (ZoneInfoNotFoundError, ValueError):
                continue
        return ZoneInfo("Europe/London")

    @property
    def lesson_ids(self) -> list[str]:
        return [str(i) for i in self.prompt.get("lesson_ids") or []]

    @property
    def latest_inbound(self) -> list[Message]:
        """The lead's messages since our last outbound one (what the reply must answer)."""
        out: list[Message] = []
        for m in reversed(self.messages):
            if m.direction != "inbound":
                break
            out.append(m)
        return list(reversed(out))

    @property
    def history(self) -> list[Message]:
        """Every message before the latest inbound run."""
        return self.messages[: len(self.messages) - len(self.latest_inbound)]

    @property
    def slots_offered_before(self) -> bool:
        return any(m.offered_slots for m in self.history if m.direction == "outbound")

    def wants_slots(self) -> bool:
        """Fetch open booking slots for this turn? Only when booking could come up: the lead
        shows interest or names a time, is HOT/WARM, or we offered times before."""
        if not self.booking_enabled or self.lead.get("call_booked"):
            return False
        if self.slots_offered_before:
            return True
        if self.lead.get("contact_status") in ("HOT", "WARM"):
            return True
        return any(_INTEREST.search(m.content) for m in self.latest_inbound)

    # ------------------------------------------------------------------ prompt text

    def stable_text(self) -> str:
        """Master + reply prompt, company facts and lessons: identical for every lead of the
        client until a prompt is made live, so it is the shared cached prefix."""
        company = [
            f"Company name: {self.company_name}",
            f"Company timezone: {self.client_timezone}",
        ]
        if self.company_description:
            company.append(self.company_description.strip())
        parts = [
            (self.prompt.get("master_system_prompt") or "").strip(),
            (self.prompt.get("system_prompt") or "").strip(),
            "<company>\n" + "\n".join(company) + "\n</company>",
            (self.prompt.get("lessons_context") or "").strip(),
        ]
        return "\n\n".join(p for p in parts if p)

    def lead_facts(self) -> str:
        """Facts about the lead that do not change turn to turn (second cached block)."""
        lead, ds = self.lead, self.dataset
        rows = [
            ("First name", lead.get("first_name")),
            ("Last name", lead.get("last_name")),
            ("Original enquiry date", _fmt_date(lead.get("inquiry_date"))),
            ("Postcode", lead.get("postcode")),
            ("Email on file", "yes" if lead.get("email") else "no"),
            ("Lead timezone", str(self.timezone)),
            ("Notes from the enquiry", lead.get("notes")),
            ("List", ds.get("name")),
            ("List source", ds.get("source")),
            ("List description", ds.get("description")),
        ]
        for key, value in sorted((lead.get("custom_fields") or {}).items()):
            if value not in (None, "", [], {}):
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                rows.append((f"Custom field {key}", text))
        body = "\n".join(f"{k}: {v}" for k, v in rows if v not in (None, ""))
        return f"<lead>\n{body}\n</lead>"

    def transcript(self) -> str:
        if not self.history:
            return "(no earlier messages)"
        return "\n".join(f"[{self._when(m.at)}] {m.speaker}: {m.content}" for m in self.history)

    def latest_text(self) -> str:
        latest = self.latest_inbound
        if not latest:
            return "(no new message from the lead: write a short, friendly follow-up)"
        return "\n".join(m.content for m in latest)

    def now_text(self, now: datetime | None = None) -> str:
        return self._when(now or datetime.now(UTC), year=True)

    def _when(self, moment: datetime, *, year: bool = False) -> str:
        local = moment.astimezone(self.timezone)
        fmt = "%a %d %b %Y %H:%M" if year else "%a %d %b %H:%M"
        return local.strftime(fmt)


def slot_label(start: datetime, tz: ZoneInfo) -> str:
    """A friendly local form, e.g. 'Tue 3 Dec at 2:30pm'."""
    local = start.astimezone(tz)
    minute = f":{local.minute:02d}" if local.minute else ""
    hour = local.hour % 12 or 12
    return f"{local:%a} {local.day} {local:%b} at {hour}{minute}{'am' if local.hour < 12 else 'pm'}"


def slot_iso(start: datetime) -> str:
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fmt_date(value: Any) -> str | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10]).strftime("%d %b %Y")
    except ValueError:
        return str(value)
