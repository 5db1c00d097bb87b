"""A minimal, valid one-page PDF of an invoice, for the emulators' PDF endpoints.

QuickBooks serves `GET /v3/company/{realm}/invoice/{id}/pdf` (python-quickbooks
`QuickBooks.download_pdf`, Accept application/pdf); Xero serves `GET Invoices/{id}` with
`Accept: application/pdf` (Xero developer docs, Invoices: "Retrieving an invoice as PDF";
xero-python `get_invoice_as_pdf`). The real documents are the platforms' own layouts; here a
PDF 1.4 file with a text object (ISO 32000-1 §7.5: header, objects, xref, trailer) is enough
for a mail program to open the attachment.
"""

from __future__ import annotations

from collections.abc import Sequence


def _escape(text: str) -> str:
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def invoice_pdf(lines: Sequence[str]) -> bytes:
    """One page, Helvetica 12pt, one line of text per entry."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        ops.append(f"({_escape(line)}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return bytes(out)
