"""One self-contained HTML page: inline CSS, images as base64 PNG data URIs, no scripts, every string escaped."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes

# the page may load nothing from outside: images come from data: URIs, styles are inline, scripts are off
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'none'"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;\
color:#1d2330;background:#f6f7f9;line-height:1.45}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c9d1e0;font-size:14px}
nav{padding:10px 28px;background:#e9edf3;font-size:13px}nav a{margin-right:14px;color:#234;text-decoration:none}
main{padding:8px 28px 40px;max-width:1250px}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;margin:16px 0;padding:6px 18px 14px}
h2{font-size:18px;border-bottom:1px solid #e3e7ee;padding-bottom:4px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}\
th,td{border:1px solid #dde2ea;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:6px 12px 6px 0;vertical-align:top}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:12px;color:#555;max-width:640px}
pre{background:#f3f5f8;padding:8px;overflow:auto;font-size:12px}
.note{color:#666;font-size:13px}.pass{background:#dff3e2}.warn{background:#fff3cd}.fail{background:#f8d7da}
.figures{display:flex;flex-wrap:wrap;align-items:flex-start}
"""

STATUS_CLASSES = {"pass": "pass", "ok": "pass", "warn": "warn", "warning": "warn", "fail": "fail", "error": "fail"}


def format_value(value: Any) -> str:
    """A plain-text rendering of a table cell (escaped later)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


@dataclass
class Section:
    """A titled block of escaped text, tables and embedded images."""

    title: str
    anchor: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> Section:
        self.parts.append(f"<h3>{escape(text)}</h3>")
        return self

    def text(self, text: str) -> Section:
        self.parts.append(f"<p>{escape(text)}</p>")
        return self

    def note(self, text: str) -> Section:
        self.parts.append(f'<p class="note">{escape(text)}</p>')
        return self

    def pre(self, text: str) -> Section:
        self.parts.append(f"<pre>{escape(text)}</pre>")
        return self

    def image(self, png: bytes, alt: str, caption: str = "") -> Section:
        data = base64.b64encode(png).decode("ascii")
        caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}">{caption_html}</figure>'
        )
        return self

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]], status_column: int | None = None) -> Section:
        """Numbers are right-aligned; the `status_column` cell colours its row (pass/warn/fail)."""
        head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
        body = []
        for row in rows:
            status = (
                STATUS_CLASSES.get(str(row[status_column]).lower(), "")
                if status_column is not None and status_column < len(row)
                else ""
            )
            cells = "".join(
                f'<td class="num">{escape(format_value(v))}</td>'
                if isinstance(v, (int, float)) and not isinstance(v, bool)
                else f"<td>{escape(format_value(v))}</td>"
                for v in row
            )
            body.append(f'<tr class="{status}">{cells}</tr>' if status else f"<tr>{cells}</tr>")
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        return self

    def key_values(self, mapping: dict[str, Any], columns: int = 1) -> Section:
        """A key/value table; `columns` > 1 puts that many pairs side by side (long configs)."""
        items = list(mapping.items())
        rows_count = -(-len(items) // columns)
        rows = []
        for r in range(rows_count):
            row: list[Any] = []
            for c in range(columns):
                index = c * rows_count + r  # fill column by column, like a reader scans
                row += list(items[index]) if index < len(items) else ["", ""]
            rows.append(row)
        return self.table(["key", "value"] * columns, rows)

    def value(self, value: Any) -> Section:
        """Any JSON-like value: a list of records becomes a table, a flat mapping a key/value table,
        text a paragraph."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            headers = list(dict.fromkeys(k for v in value for k in v))
            status = next(
                (i for i, h in enumerate(headers) if h in ("status", "result", "verdict", "level", "severity")), None
            )
            return self.table(headers, [[v.get(h) for h in headers] for v in value], status_column=status)
        if isinstance(value, list):
            self.parts.append("<ul>" + "".join(f"<li>{escape(format_value(v))}</li>" for v in value) + "</ul>")
            return self
        if isinstance(value, dict) and all(not isinstance(v, (dict, list)) or _short(v) for v in value.values()):
            return self.key_values(value)
        return self.pre(json.dumps(value, indent=2, default=str))

    def render(self) -> str:
        return f'<section id="{self.anchor}"><h2>{escape(self.title)}</h2>{"".join(self.parts)}</section>'


def _short(value: Any) -> bool:
    return len(json.dumps(value, default=str)) < 120


class Page:
    """A report page: a header, a table of contents and sections, written as one HTML file."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title, self.subtitle = title, subtitle
        self.sections: list[Section] = []

    def section(self, title: str, anchor: str | None = None) -> Section:
        anchor = anchor or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or f"section-{len(self.sections)}"
        if not re.fullmatch(r"[a-z0-9-]+", anchor):
            raise ValueError(f"section anchor must be [a-z0-9-]+, got {anchor!r}")
        section = Section(title, anchor)
        self.sections.append(section)
        return section

    def render(self) -> str:
        nav = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in self.sections)
        subtitle = f"<p>{escape(self.subtitle)}</p>" if self.subtitle else ""
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(self.title)}</title><style>{CSS}</style></head>\n"
            f"<body><header><h1>{escape(self.title)}</h1>{subtitle}</header><nav>{nav}</nav>\n<main>\n"
            + "\n".join(s.render() for s in self.sections)
            + "\n</main></body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """The page at `path`, written whole or not at all (a full disk is a one-line WriteError)."""
        path = Path(path)
        page = self.render().encode("utf-8")
        atomic_write_bytes(path, lambda handle: handle.write(page), size=len(page))
        return path
