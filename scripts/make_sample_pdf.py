#!/usr/bin/env python3
"""Writes a small multi-page PDF with real text objects (no dependencies), for loader tests and
the samples folder. Usage: make_sample_pdf.py OUT.pdf TITLE PAGE_TEXT [PAGE_TEXT...]
Each PAGE_TEXT is lines separated by '|'."""
import sys


def escape(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def main():
    out, title, pages = sys.argv[1], sys.argv[2], sys.argv[3:]
    objects = []  # bodies, object n is objects[n-1]
    objects.append("<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(None)  # pages, filled below
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for text in pages:
        lines = text.split("|")
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            ops.append("(%s) Tj T*" % escape(line))
        ops.append("ET")
        stream = "\n".join(ops)
        objects.append("<< /Length %d >>\nstream\n%s\nendstream" % (len(stream.encode("latin-1")), stream))
        content = len(objects)
        objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content)
        kids.append(len(objects))
    objects[1] = "<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join("%d 0 R" % k for k in kids), len(kids))
    objects.append("<< /Title (%s) /Producer (saem make_sample_pdf.py) >>" % escape(title))
    info = len(objects)

    data = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(data))
        data += ("%d 0 obj\n%s\nendobj\n" % (n, body)).encode("latin-1")
    xref = len(data)
    data += ("xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)).encode()
    for off in offsets:
        data += ("%010d 00000 n \n" % off).encode()
    data += ("trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
             % (len(objects) + 1, info, xref)).encode()
    with open(out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
