"""Rebuild the shipped corpora from Debian packages; deterministic for given package versions.

``web``: data/corpus/web.jsonl.xz, the World English Bible (public domain), one JSON document
per chapter, exported with `diatheke`. ``pd``: data/corpus/pd.jsonl.xz, those chapters plus
the public-domain SWORD commentaries and dictionaries packaged by Debian and two public-domain
dictd dictionaries, deduplicated and decontaminated against the validation split, with
data/corpus/pd.manifest.json (modules, package versions, licences, sizes, counts removed):

    apt-get install -y diatheke libsword-utils sword-text-web sword-comm-tdavid \\
        sword-comm-mhcc sword-comm-scofield sword-dict-naves sword-dict-strongs-hebrew \\
        sword-dict-strongs-greek dict-devil dict-jargon
    PYTHONPATH=. python data/corpus/build_corpus.py web    # ~2 min
    PYTHONPATH=. python data/corpus/build_corpus.py pd     # ~1 min; reads web.jsonl.xz

Each source's licence is checked in its package (the SWORD .conf's DistributionLicense and
/usr/share/doc/<pkg>/copyright) and the build refuses one that is not public domain. The KJV
(sword-text-kjv) is left out: it is under Crown letters patent in the UK, and it is the text
the commentaries quote, so it would mostly duplicate them.
"""

from __future__ import annotations

import hashlib
import html
import json
import lzma
import os
import re
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
MODULE = "engWEB2015eb"
OUT = HERE / "web.jsonl.xz"
PD_OUT = HERE / "pd.jsonl.xz"
PD_MANIFEST = HERE / "pd.manifest.json"
SWORD = Path("/usr/share/sword")
DICTD = Path("/usr/share/dictd")

TARGET_CHARS = 4_000  # a document closes at an entry boundary once this long...
MAX_CHARS = 8_000  # ...and never grows past this (long entries split at paragraphs)
MIN_DUP_WORDS = 8  # paragraphs shorter than this (headings) are never deduplicated
NEAR_DUP = 0.5  # a document half of whose 13-grams appeared earlier is a near-duplicate
UNIT_CHARS = 500  # decontamination drops sentence groups of about this size


# ----- web: the World English Bible, one document per chapter -------------------------------
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


def build_web() -> None:
    docs = []
    for book, ch in chapters():
        text = chapter_text(book, ch)
        if len(text) > 40:
            docs.append({"id": f"{book} {ch}", "text": text})
    write_jsonl_xz(OUT, docs)


def write_jsonl_xz(path: Path, docs: list[dict]) -> None:
    payload = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    path.write_bytes(lzma.compress(payload, preset=9 | lzma.PRESET_EXTREME))
    print(f"{len(docs)} documents, {len(payload) / 1e6:.2f} MB of UTF-8, "
          f"{path.stat().st_size / 1e6:.2f} MB compressed -> {path}")


# ----- pd: sources, licences, export --------------------------------------------------------
# (name, Debian package, kind, module or dictd database, what it is); order = dedup priority
SOURCES = [
    ("engWEB2015eb", "sword-text-web", "web", MODULE, "World English Bible with Deuterocanon"),
    ("MHCC", "sword-comm-mhcc", "sword", "MHCC", "Matthew Henry's Concise Commentary"),
    ("Scofield", "sword-comm-scofield", "sword", "Scofield",
     "Scofield Reference Notes (1917)"),
    ("TDavid", "sword-comm-tdavid", "sword", "TDavid", "C. H. Spurgeon's Treasury of David"),
    ("Nave", "sword-dict-naves", "sword", "Nave", "Nave's Topical Bible"),
    ("StrongsHebrew", "sword-dict-strongs-hebrew", "sword", "StrongsHebrew",
     "Strong's Hebrew dictionary (1890)"),
    ("StrongsGreek", "sword-dict-strongs-greek", "sword", "StrongsGreek",
     "Strong's Greek dictionary (1890)"),
    ("devil", "dict-devil", "dictd", "devil", "Ambrose Bierce, The Devil's Dictionary (1911)"),
    ("jargon", "dict-jargon", "dictd", "jargon", "The Jargon File 4.4.7 (2003)"),
]


def package_version(pkg: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                          capture_output=True, text=True, check=True).stdout


def sword_conf(module: str) -> tuple[Path, dict[str, str]]:
    for p in sorted((SWORD / "mods.d").glob("*.conf")):
        text = p.read_text(encoding="utf-8", errors="replace")
        if re.search(rf"^\[{module}\]", text, flags=re.M):
            fields = dict(re.findall(r"^(\w+)=(.*)$", text, flags=re.M))
            return p, fields
    sys.exit(f"SWORD module {module} not installed")


def licence(name: str, pkg: str, kind: str, module: str) -> str:
    """The licence both the module and the package's copyright file state; refuse others."""
    copyright_text = Path(f"/usr/share/doc/{pkg}/copyright").read_text(encoding="utf-8")
    if "public domain" not in copyright_text.lower().replace("-", " "):
        sys.exit(f"{pkg}: copyright file does not say public domain; not shipping {name}")
    if kind == "dictd":
        return "public domain (package copyright file)"
    _, fields = sword_conf(module)
    lic = fields.get("DistributionLicense", "").strip()
    if lic != "Public Domain":
        sys.exit(f"{name}: DistributionLicense={lic!r}, not public domain; not shipping it")
    return "Public Domain (module DistributionLicense and package copyright file)"


def sword_path() -> str:
    """A private SWORD_PATH over the system modules. Debian's MHCC 2.0 .conf says
    ModDrv=zCom4 but its index has zCom's 10-byte records (24,115 * 10 = ot.bzv's 241,150
    bytes), so libsword 1.9 reads garbage ('Error reading ulCompOffset'); the copy says zCom."""
    root = Path(tempfile.mkdtemp(prefix="sword-"))
    (root / "mods.d").mkdir()
    (root / "modules").symlink_to(SWORD / "modules")
    for p in sorted((SWORD / "mods.d").glob("*.conf")):
        text = p.read_text(encoding="utf-8", errors="replace")
        if re.search(r"^\[MHCC\]", text, flags=re.M):
            assert (SWORD / "modules/comments/zcom/mhcc/ot.bzv").stat().st_size == 241_150
            text = text.replace("ModDrv=zCom4", "ModDrv=zCom")
        (root / "mods.d" / p.name).write_text(text, encoding="utf-8")
    return str(root)


def mod2imp(module: str, path: str) -> list[tuple[str, str]]:
    """(key, raw markup) of every non-empty entry, in the module's order."""
    r = subprocess.run(["mod2imp", module], capture_output=True, text=True, check=True,
                       env={**os.environ, "SWORD_PATH": path})
    if "Error reading" in r.stderr:
        sys.exit(f"mod2imp {module}: {r.stderr.splitlines()[0]}")
    out = []
    for block in r.stdout.split("\n$$$")[1:]:
        key, _, body = block.partition("\n")
        if body.strip():
            out.append((key.strip(), body))
    return out


_BLOCK = re.compile(r"<(?:/?(?:div|p|title|item|list|row|table|lg|l|entryFree|def)\b[^>]*"
                    r"|lb\b[^>]*)>")


def markup_paragraphs(raw: str) -> list[str]:
    """OSIS/TEI markup to paragraphs: block elements break lines, inline ones vanish."""
    s = re.sub(r"<note\b.*?</note>", " ", raw, flags=re.S)
    s = _BLOCK.sub("\n", s)
    s = re.sub(r"<(?:/?cell|w)\b[^>]*>", " ", s)  # table cells and words stay apart
    s = re.sub(r"<[^>]+>", "", s)
    s = html.unescape(s)
    paras = [re.sub(r"\s+", " ", p).strip() for p in s.split("\n")]
    return [p for p in paras if p]


def dictd_entries(db: str) -> list[tuple[str, list[str]]]:
    """(headword, paragraphs) from a dictd database; its 00-database-* entries are skipped."""
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def num(s: str) -> int:
        n = 0
        for c in s:
            n = n * 64 + b64.index(c)
        return n

    body = zlib.decompress((DICTD / f"{db}.dict.dz").read_bytes(), 16 + zlib.MAX_WBITS)
    out = []
    for line in (DICTD / f"{db}.index").read_text(encoding="utf-8").splitlines():
        head, off, size = line.split("\t")[:3]
        if head.startswith("00-database") or head.startswith("00database"):
            continue
        text = body[num(off):num(off) + num(size)].decode("utf-8")
        # hard-wrapped lines: blank lines separate paragraphs
        paras = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]
        out.append((head, [p for p in paras if p]))
    return out


# a lexicon entry's markup lacks its headword (the SWORD key): it becomes the first line
HEADWORD = {"Nave": str, "StrongsHebrew": lambda k: f"H{int(k)}",
            "StrongsGreek": lambda k: f"G{int(k)}"}


def source_entries(kind: str, module: str, path: str) -> list[tuple[str, list[str]]]:
    if kind == "web":
        with lzma.open(OUT, "rt", encoding="utf-8") as f:
            return [(d["id"], [d["text"]]) for d in map(json.loads, f)]
    if kind == "sword":
        head = HEADWORD.get(module)
        return [(k, ([head(k)] if head else []) + markup_paragraphs(raw))
                for k, raw in mod2imp(module, path)]
    return dictd_entries(module)


# ----- pd: packing, dedup, decontamination --------------------------------------------------
def normal_key(paragraph: str) -> bytes:
    from gqa_lib.train.data import normal_words

    return hashlib.sha1(" ".join(normal_words(paragraph)).encode("utf-8")).digest()


def split_long(paragraph: str, limit: int) -> list[str]:
    """A paragraph longer than `limit` as sentence groups of at most ~limit characters."""
    if len(paragraph) <= limit:
        return [paragraph]
    out, cur = [], ""
    for sent in re.split(r"(?<=[.!?;:])\s+", paragraph):
        if cur and len(cur) + 1 + len(sent) > limit:
            out.append(cur)
            cur = sent
        else:
            cur = f"{cur} {sent}" if cur else sent
    return out + [cur] if cur else out


def pack(name: str, entries: list[tuple[str, list[str]]]) -> list[dict]:
    """Consecutive entries merged into documents of ~TARGET..MAX_CHARS (one entry = one
    document for the Bible); a paragraph is never split across documents."""
    if name == "engWEB2015eb":
        return [{"id": f"{name}:{k}", "source": name, "text": p[0]} for k, p in entries]
    docs: list[dict] = []
    cur: list[str] = []
    keys: list[str] = []
    size = 0

    def close() -> None:
        nonlocal cur, keys, size
        if cur:
            span = keys[0] if keys[0] == keys[-1] else f"{keys[0]} - {keys[-1]}"
            docs.append({"id": f"{name}:{span}", "source": name, "text": "\n".join(cur)})
        cur, keys, size = [], [], 0

    for key, paras in entries:
        if size >= TARGET_CHARS:
            close()
        for p in (q for para in paras for q in split_long(para, MAX_CHARS)):
            if size and size + len(p) + 1 > MAX_CHARS:
                close()
            cur.append(p)
            keys.append(key)
            size += len(p) + 1
    close()
    # disambiguate ids of documents cut from one long entry
    seen: dict[str, int] = {}
    for d in docs:
        seen[d["id"]] = seen.get(d["id"], 0) + 1
    part: dict[str, int] = {}
    for d in docs:
        if seen[d["id"]] > 1:
            part[d["id"]] = part.get(d["id"], 0) + 1
            d["id"] = f"{d['id']} (part {part[d['id']]})"
    return docs


def dedup_paragraphs(entries: list[tuple[str, list[str]]], seen: set[bytes]
                     ) -> tuple[list[tuple[str, list[str]]], int]:
    """Drop paragraphs (of >= MIN_DUP_WORDS words) whose normalised text appeared before."""
    from gqa_lib.train.data import normal_words

    out, dropped = [], 0
    for key, paras in entries:
        kept = []
        for p in paras:
            if len(normal_words(p)) >= MIN_DUP_WORDS:
                h = normal_key(p)
                if h in seen:
                    dropped += 1
                    continue
                seen.add(h)
            kept.append(p)
        if kept:
            out.append((key, kept))
    return out, dropped


def drop_near_duplicates(docs: list[dict], vocab: dict[str, int]) -> tuple[list[dict], int]:
    """Drop documents at least NEAR_DUP of whose 13-grams occurred in earlier documents."""
    from gqa_lib.train.data import ngram_hashes

    seen: set[int] = set()
    out = []
    for d in docs:
        h = ngram_hashes(d["text"], vocab)
        if len(h) and sum(int(x) in seen for x in h) >= NEAR_DUP * len(h):
            continue
        seen.update(h.tolist())
        out.append(d)
    return out, len(docs) - len(out)


def decontaminate(doc: dict, val_hashes: np.ndarray, vocab: dict[str, int]
                  ) -> tuple[str, int]:
    """The document without the sentence groups that share a 13-gram with validation
    (checked again after each removal, since removal makes new 13-grams); units removed."""
    from gqa_lib.train.data import NGRAM, ngram_hashes, normal_words

    lines = [split_long(line, UNIT_CHARS) for line in doc["text"].split("\n")]
    units = [(i, u) for i, line in enumerate(lines) for u in line]
    removed = 0
    while True:
        n_words = np.array([len(normal_words(u)) for _, u in units], dtype=np.int64)
        text = " ".join(u for _, u in units)
        h = ngram_hashes(text, vocab)
        if not len(h):
            break
        pos = np.searchsorted(val_hashes, h)
        hit = val_hashes[np.minimum(pos, len(val_hashes) - 1)] == h
        if not hit.any():
            break
        owner = np.repeat(np.arange(len(units)), n_words)  # word position -> unit
        bad = set()
        for start in np.flatnonzero(hit):
            bad.update(owner[start:start + NGRAM].tolist())
        units = [u for j, u in enumerate(units) if j not in bad]
        removed += len(bad)
    out: list[list[str]] = [[] for _ in lines]
    for i, u in units:
        out[i].append(u)
    return "\n".join(" ".join(line) for line in out if line), removed


def build_pd() -> None:
    from gqa_lib.train.data import in_validation, ngram_hashes, split_documents

    path = sword_path()
    seen: set[bytes] = set()
    docs: list[dict] = []
    manifest: dict = {"sources": [], "removed": {}}
    para_dups = 0
    for name, pkg, kind, module, what in SOURCES:
        lic = licence(name, pkg, kind, module)
        entries = source_entries(kind, module, path)
        entries, dropped = dedup_paragraphs(entries, seen)
        para_dups += dropped
        packed = pack(name, entries)
        docs.extend(packed)
        manifest["sources"].append({"name": name, "package": pkg,
                                    "version": package_version(pkg), "what": what,
                                    "licence": lic, "entries": len(entries),
                                    "duplicate_paragraphs_dropped": dropped})
        print(f"{name}: {len(entries)} entries -> {len(packed)} documents "
              f"({dropped} duplicate paragraphs dropped)", flush=True)
    vocab: dict[str, int] = {}
    docs, near = drop_near_duplicates(docs, vocab)
    texts = [d["text"] for d in docs]
    _, val_texts = split_documents(texts)
    val_set = set(val_texts)
    by_source: dict[str, int] = {}
    val_hashes = np.unique(np.concatenate([ngram_hashes(t, vocab) for t in val_texts]))
    out, units, touched, emptied, flipped = [], 0, 0, [], []
    for d in docs:
        if d["text"] in val_set:
            out.append(d)
            continue
        text, removed = decontaminate(d, val_hashes, vocab)
        units += removed
        touched += removed > 0
        if removed:
            by_source[d["source"]] = by_source.get(d["source"], 0) + 1
        if len(text) < 40:
            emptied.append(d["id"])
            continue
        if removed and in_validation(text):
            flipped.append(d["id"])  # its new text would hash into validation: drop it
            continue
        out.append({**d, "text": text})
    manifest["removed"] = {
        "duplicate_paragraphs": para_dups, "near_duplicate_documents": near,
        "decontaminated_units": units, "decontaminated_documents": touched,
        "documents_emptied": emptied, "documents_dropped_to_keep_split": flipped,
        "decontaminated_by_source": dict(sorted(by_source.items()))}
    train, val = split_documents([d["text"] for d in out])
    assert set(val) == val_set, "decontamination changed the validation split"
    write_jsonl_xz(PD_OUT, out)
    is_val = {t: True for t in val}
    for s in manifest["sources"]:
        mine = [d["text"] for d in out if d["source"] == s["name"]]
        nv = [t for t in mine if t in is_val]
        s.update({"documents": len(mine), "val_documents": len(nv),
                  "bytes": sum(len(t.encode("utf-8")) for t in mine),
                  "val_bytes": sum(len(t.encode("utf-8")) for t in nv)})
    PD_MANIFEST.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    print(json.dumps(manifest["removed"]))


def main() -> None:
    which = sys.argv[1:] or ["web"]
    for w in which:
        {"web": build_web, "pd": build_pd}[w]()


if __name__ == "__main__":
    main()
