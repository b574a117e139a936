"""A4 PDF documents with French labels, for every package's printable reports.

The PDF core fonts are used with the Windows-1252 encoding, which has `€`, `œ` and the
typographic apostrophe: nothing to embed, and the text stays extractable (tests read it
back with pypdf).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from fpdf import FPDF
from fpdf.fonts import FontFace

__all__ = ["Document", "french_date", "printable"]

_HEADING = FontFace(emphasis="BOLD", fill_color=(230, 230, 230))


def printable(text: str) -> str:
    """What Windows-1252 cannot draw, spelled with what it can."""
    return text.encode("cp1252", "replace").decode("cp1252")


def french_date(day: date | datetime) -> str:
    """23/11/2026."""
    return day.strftime("%d/%m/%Y")


class Document(FPDF):
    """An A4 page with a title, paragraphs, tables and a numbered footer."""

    def __init__(self, title: str) -> None:
        super().__init__(format="A4")
        self.core_fonts_encoding = "windows-1252"
        self.set_title(printable(title))
        self.set_auto_page_break(True, margin=15)
        self.add_page()
        self.set_font("helvetica", "B", 16)
        self.cell(0, 10, printable(title), new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        """Page x/y at the bottom of each page."""
        self.set_y(-12)
        self.set_font("helvetica", "I", 8)
        self.cell(0, 6, f"Page {self.page_no()}/{{nb}}", align="C")

    def heading(self, text: str) -> None:
        """A section title."""
        self.ln(3)
        self.set_font("helvetica", "B", 12)
        self.cell(0, 8, printable(text), new_x="LMARGIN", new_y="NEXT")

    def paragraph(self, text: str, *, bold: bool = False, size: int = 10) -> None:
        """Text wrapped to the page width."""
        self.set_font("helvetica", "B" if bold else "", size)
        self.multi_cell(0, 5, printable(text), new_x="LMARGIN", new_y="NEXT")

    def grid(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[int],
        *,
        align: str,
    ) -> None:
        """A table; `align` has one letter (L, R, C) per column."""
        self.set_font("helvetica", "", 8)
        with self.table(
            col_widths=tuple(widths),
            text_align=tuple(align),
            headings_style=_HEADING,
            line_height=5,
            width=sum(widths),
        ) as table:
            for values in [header, *rows]:
                table.row([printable(value) for value in values])

    def output_bytes(self) -> bytes:
        """The finished PDF."""
        return bytes(self.output())
