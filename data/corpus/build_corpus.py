"""Rebuild data/corpus/web.jsonl.xz: the World English Bible (public domain), one JSON document
per chapter. Needs Debian's `diatheke` and `sword-text-web`:

    apt-get install -y diatheke sword-text-web
    python data/corpus/build_corpus.py

Output is deterministic for a given module version (recorded in data/README.md).
"""

from __future__ import annotations

import html
import json
import lzma
import re
import subprocess
from pathlib import Path

MODULE = "engWEB2015eb"
OUT = Path(__file__).with_name("web.jsonl.xz")


def diatheke(key: str) -> str:
    r = subprocess.run(["diatheke", "-b", MODULE, "-f", "OSIS", "-k", key],
                       capture_output=True, text=True, check=True)
    return r.stdout.replace(f"({MODULE})", "")


def plain(osis: str) -> str:
    s = osis.replace("</w><w>", "</w> <w>")
    s = re.sub(r"<note\b.*?</note>", "", s, flags=re.S)
    s = re.sub(r"<title\b.*?</title>", "", s, flags=re.S)
    s = re.sub(r"<[^>]+>", " ", s)
    s = html.unescape(s)
    s = re.sub(r"\s+([,.;:!?’”)])", r"\1", s)
    s = re.sub(r"([“‘(])\s+", r"\1", s)
    return re.sub(r"\s+", " ", s).strip()


def chapters() -> list[tuple[str, int]]:
    """(book, chapter) in canonical order, read off the whole module once."""
    dump = diatheke("Genesis 1:1 - Revelation of John 22:21")
    book = r"(?:I{1,3} |IV )?[A-Z][a-z]+(?:(?: (?:of|and|the))* [A-Z][a-z]+)*"
    seen: dict[tuple[str, int], None] = {}
    for m in re.finditer(rf"(?P<book>{book}) (?P<ch>\d+):\d+: ", dump):
        seen.setdefault((m.group("book"), int(m.group("ch"))), None)
    return list(seen)


def chapter_text(book: str, ch: int) -> str:
    raw = diatheke(f"{book} {ch}")
    verse = re.compile(rf"{re.escape(book)} {ch}:\d+: ")
    parts = verse.split(raw)
    title = plain(parts[0])
    body = " ".join(plain(p) for p in parts[1:])
    # headings repeated before every verse of a psalm are an artifact of the export
    if title:
        body = body.replace(title, " ")
    return re.sub(r"\s+", " ", ((title + "\n") if title else "") + body).strip()


def main() -> None:
    docs = []
    for book, ch in chapters():
        text = chapter_text(book, ch)
        if len(text) > 40:
            docs.append({"id": f"{book} {ch}", "text": text})
    payload = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    OUT.write_bytes(lzma.compress(payload.encode("utf-8"), preset=9 | lzma.PRESET_EXTREME))
    n_bytes = len(payload.encode("utf-8"))
    print(f"{len(docs)} documents, {n_bytes / 1e6:.2f} MB of UTF-8, "
          f"{OUT.stat().st_size / 1e6:.2f} MB compressed -> {OUT}")


if __name__ == "__main__":
    main()
