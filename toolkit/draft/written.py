"""What a draft wrote, so that a person's work is never overwritten.

Every draft carries the SHA-256 of what nianbao wrote: a .docx of its body part
(word/document.xml, in the core property 标识符/identifier), a web page of all of its text but
the last line, which holds the digest as a comment. Before a draft replaces a file, the file's
digest is recomputed: only a file byte for byte as nianbao wrote it is replaced silently.
Whatever application saved it since — python-docx, LibreOffice (which keeps our
lastModifiedBy and revision), a web editor, a text editor — changes those bytes or drops the
mark, and the file is kept unless the user says --overwrite (then a backup copy is made first).
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

DOCX_BODY = "word/document.xml"
DOCX_MARK = "nianbao-sha256:"
HTML_MARK = re.compile(r"\n<!-- nianbao-sha256:([0-9a-f]{64}) [^\n]*-->\n?\Z")
HTML_NOTE = "本行记录 nianbao 写出的内容，用于判断网页是否被编辑过"

OURS, EDITED, FOREIGN, MISSING = "ours", "edited", "foreign", "missing"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mark_docx(d) -> bytes:
    """Save the python-docx ``d`` with the digest of its body in its core properties. The body is
    serialised the same way twice, so the digest of the first save is that of the second."""
    buf = io.BytesIO()
    d.save(buf)
    d.core_properties.identifier = DOCX_MARK + _sha(_docx_body(buf.getvalue()))
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _docx_body(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.read(DOCX_BODY)


def _docx_state(data: bytes) -> str:
    from docx import Document as open_document

    try:
        mark = open_document(io.BytesIO(data)).core_properties.identifier or ""
        body = _docx_body(data)
    except Exception:  # noqa: BLE001 - not a .docx at all (or a damaged one): not ours
        return FOREIGN
    if not mark.startswith(DOCX_MARK):
        return FOREIGN
    return OURS if mark == DOCX_MARK + _sha(body) else EDITED


def mark_html(page: str) -> str:
    """The page with a last line recording the digest of everything above it."""
    page = page if page.endswith("\n") else page + "\n"
    return f"{page}<!-- nianbao-sha256:{_sha(page.encode('utf-8'))} {HTML_NOTE} -->\n"


def _html_state(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    m = HTML_MARK.search(text)
    if m is None:
        return EDITED if "nianbao-sha256:" in text or 'content="nianbao' in text else FOREIGN
    return OURS if _sha(text[: m.start() + 1].encode("utf-8")) == m.group(1) else EDITED


def state(path: Path) -> str:
    """MISSING, OURS (as nianbao wrote it), EDITED (ours, changed since) or FOREIGN (no mark)."""
    path = Path(path)
    if not path.exists():
        return MISSING
    try:
        data = path.read_bytes()
    except OSError:
        return FOREIGN
    return _docx_state(data) if path.suffix.lower() == ".docx" else _html_state(data)


def backup_name(path: Path, now: datetime | None = None) -> Path:
    """报告.docx → 报告.bak-20260112-093000.docx (a free name beside it)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.bak-{stamp}{path.suffix}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.bak-{stamp}-{n}{path.suffix}")
        n += 1
    return candidate


def keep_backup(path: Path) -> Path:
    """Copy ``path`` to its backup name before it is replaced; the copy keeps its dates."""
    target = backup_name(Path(path))
    shutil.copy2(path, target)
    return target
