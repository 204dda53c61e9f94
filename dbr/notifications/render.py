"""The text and HTML of a staff notification email (one notification, or a digest)."""

from __future__ import annotations

from html import escape
from typing import Any


def absolute_link(link: str | None, app_base_url: str) -> str | None:
    """A notification's in-app link (/conversations/<id>) as a full URL."""
    if not link:
        return None
    if link.startswith(("http://", "https://")):
        return link
    return f"{app_base_url.rstrip('/')}/{link.lstrip('/')}"


def render_email(decision: dict[str, Any], app_base_url: str) -> tuple[str, str, str]:
    """(subject, text, html) for the email a notify_delivery_begin decision describes."""
    subject = str(decision.get("subject") or "Notification")
    greeting = f"Hi {decision['first_name']}," if decision.get("first_name") else "Hi,"
    company = str(decision.get("company_name") or "")
    if decision.get("kind") == "digest":
        items = decision.get("items") or []
        lines = [
            greeting,
            "",
            f"Here is what happened at {company} that you have not seen yet:",
            "",
        ]
        blocks = []
        for item in items:
            url = absolute_link(item.get("link"), app_base_url)
            lines.append(
                f"- {item.get('title')}: {item.get('message')}" + (f" ({url})" if url else "")
            )
            title = escape(str(item.get("title") or ""))
            body = escape(str(item.get("message") or ""))
            head = f'<a href="{escape(url)}">{title}</a>' if url else title
            blocks.append(f"<li><strong>{head}</strong><br>{body}</li>")
        text = "\n".join(lines)
        html = (
            f"<p>{escape(greeting)}</p><p>Here is what happened at {escape(company)} that you have "
            f"not seen yet:</p><ul>{''.join(blocks)}</ul>"
        )
        return subject, text, html
    url = absolute_link(decision.get("link"), app_base_url)
    message = str(decision.get("message") or "")
    text = "\n".join([greeting, "", message, *(["", f"Open it: {url}"] if url else [])])
    html = f"<p>{escape(greeting)}</p><p>{escape(message)}</p>" + (
        f'<p><a href="{escape(url)}">Open it in the app</a></p>' if url else ""
    )
    return subject, text, html
