"""The register of processing activities (GDPR art. 30), from the installed packages'
declarations and the retention periods configured now."""

from __future__ import annotations

from typing import Any

from core.settings import Settings

from .contract import parts


def register(settings: Settings) -> list[dict[str, Any]]:
    """Every processing, with its retention periods in days as configured."""
    entries = []
    for package, privacy in parts():
        for processing in privacy.processings:
            entries.append({
                "name": processing.name,
                "package": package,
                "purpose": processing.purpose,
                "legal_basis": processing.legal_basis,
                "data_subjects": list(processing.data_subjects),
                "data_categories": list(processing.data_categories),
                "recipients": list(processing.recipients),
                "retention": [
                    {"what": what, "setting": f"CIVICSENSE_{field.upper()}",
                     "days": getattr(settings, field)}
                    for what, field in processing.retention
                ],
                "security": list(processing.security),
            })  # fmt: skip
    return entries


def to_markdown(entries: list[dict[str, Any]]) -> str:
    """The register as a Markdown document (one section per processing)."""
    lines = ["# Register of processing activities (GDPR art. 30)", ""]
    for entry in entries:
        lines += [f"## {entry['name']}", "", f"- Purpose: {entry['purpose']}",
                  f"- Legal basis: {entry['legal_basis']}",
                  f"- Data subjects: {', '.join(entry['data_subjects'])}",
                  f"- Data categories: {', '.join(entry['data_categories'])}",
                  f"- Recipients: {', '.join(entry['recipients'])}", "- Retention:"]  # fmt: skip
        lines += [f"  - {r['what']}: {r['days']} days ({r['setting']})" for r in entry["retention"]]
        lines += ["- Security measures:", *(f"  - {m}" for m in entry["security"]), ""]
    return "\n".join(lines)
