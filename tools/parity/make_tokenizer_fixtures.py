#!/usr/bin/env python3
"""Reference data for crates/atlas-tokenizer, made with open_clip's own tokenizer.

Writes, under crates/atlas-tokenizer/:

* ``src/ftfy_tables.json`` -- the tables the Rust port of ``ftfy.fix_text`` and
  ``html.unescape`` needs, dumped from the installed ftfy / CPython (HTML5 entity
  map, ftfy's entity map, ligature and width maps, control characters, the
  single-byte charmaps ftfy tries, and ftfy's ``BADNESS_RE`` / ``UTF8_DETECTOR_RE``
  re-emitted as Rust-regex syntax with every class spelled out explicitly).
* ``tests/fixtures/templates_ids.bin.gz`` -- ids for every (template, class name) pair
  of ``$CLIP_ATLAS_SHARED/data/imagenet/meta/templates_openai_80.txt`` x
  ``classnames_openai.txt`` (80 x 1000 = 80,000 strings; the strings themselves are
  derived from the shared files at test time and are not committed).
* ``tests/fixtures/extra.jsonl.gz`` -- a few thousand extra strings (unicode, HTML
  entities, mojibake, whitespace oddities, long strings, other context lengths) with
  their ids.

Binary layout of templates_ids.bin.gz (little endian):
  magic b"ATOK1", u32 n_templates, u32 n_classes, u32 context_length,
  then per string (template-major: t0c0, t0c1, ...): u8 n, n x u16 ids
  (the ids up to the last non-pad position; the rest is pad 0).

Usage: python3 tools/parity/make_tokenizer_fixtures.py [--tables] [--fixtures]
(no flag = both). Needs open_clip_torch, ftfy, regex (tools/parity/requirements.txt).
"""

from __future__ import annotations

import argparse
import gzip
import html
import html.entities
import json
import os
import random
import re
import re._constants as sre_c
import re._parser as sre_parse
import struct
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CRATE = ROOT / "crates" / "atlas-tokenizer"
SHARED = Path(os.environ.get("CLIP_ATLAS_SHARED", ROOT.parent / "shared"))


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------

def _esc(cp: int) -> str:
    return "\\x{%X}" % cp


def _ranges(cps: list[int]) -> str:
    cps = sorted(set(cps))
    out = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        out.append(_esc(cps[i]) if i == j else _esc(cps[i]) + "-" + _esc(cps[j]))
        i = j + 1
    return "".join(out)


_SPACE = [cp for cp in range(0x110000) if chr(cp).isspace()]
_WORD = [cp for cp in range(0x110000) if chr(cp).isalnum() or cp == ord("_")]


def _emit_in(items) -> str:
    neg = False
    cps: list[int] = []
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            neg = True
        elif name == "LITERAL":
            cps.append(av)
        elif name == "RANGE":
            cps.extend(range(av[0], av[1] + 1))
        elif name == "CATEGORY" and str(av) == "CATEGORY_SPACE":
            cps.extend(_SPACE)
        elif name == "CATEGORY" and str(av) == "CATEGORY_WORD":
            cps.extend(_WORD)
        else:
            raise ValueError(f"unsupported class item {op} {av}")
    return "[" + ("^" if neg else "") + _ranges(cps) + "]"


def _emit(seq) -> str:
    out = []
    for op, av in seq:
        name = str(op)
        if name == "LITERAL":
            out.append(_esc(av))
        elif name == "IN":
            out.append(_emit_in(av))
        elif name == "ANY":
            out.append(".")
        elif name == "AT":
            if str(av) != "AT_BEGINNING":
                raise ValueError(f"unsupported anchor {av}")
            out.append("^")
        elif name == "BRANCH":
            out.append("(?:" + "|".join(_emit(s) for s in av[1]) + ")")
        elif name == "SUBPATTERN":
            out.append("(?:" + _emit(av[3]) + ")")
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, sub = av
            hi_s = "" if hi == sre_c.MAXREPEAT else str(hi)
            q = "{%d,%s}" % (lo, hi_s)
            out.append("(?:" + _emit(sub) + ")" + q + ("?" if name == "MIN_REPEAT" else ""))
        elif name == "ASSERT_NOT":
            direction, sub = av
            out.append(("(?<!" if direction < 0 else "(?!") + _emit(sub) + ")")
        else:
            raise ValueError(f"unsupported op {op}")
    return "".join(out)


def rust_regex(compiled: re.Pattern) -> str:
    return _emit(sre_parse.parse(compiled.pattern, compiled.flags))


def make_tables() -> None:
    import ftfy
    import ftfy.bad_codecs  # noqa: F401  registers sloppy-* and utf-8-variants
    from ftfy import badness, chardata

    charmaps = {}
    for enc in chardata.CHARMAP_ENCODINGS:
        table = []
        for b in range(256):
            try:
                table.append(bytes([b]).decode(enc))
            except UnicodeDecodeError:
                table.append(None)
        charmaps[enc] = table
    import html as _html_mod

    tables = {
        "python_version": sys.version.split()[0],
        "unicodedata_version": unicodedata.unidata_version,
        "ftfy_version": ftfy.__version__,
        "html5": html.entities.html5,
        "invalid_charrefs": {str(k): v for k, v in _html_mod._invalid_charrefs.items()},
        "invalid_codepoints": sorted(_html_mod._invalid_codepoints),
        "ftfy_entities": chardata.HTML_ENTITIES,
        "ligatures": {chr(k): v for k, v in chardata.LIGATURES.items()},
        "width_map": {chr(k): v for k, v in chardata.WIDTH_MAP.items()},
        "control_chars": sorted(chardata.CONTROL_CHARS.keys()),
        "charmap_encodings": list(chardata.CHARMAP_ENCODINGS),
        "charmaps": charmaps,
        "windows_1252_strict": [
            (bytes([b]).decode("windows-1252", errors="replace") if b >= 0x80 else chr(b)) for b in range(256)
        ],
        "python_space": _SPACE,
        "badness_re": rust_regex(badness.BADNESS_RE),
        "utf8_detector_re": rust_regex(chardata.UTF8_DETECTOR_RE),
    }
    out = CRATE / "src" / "ftfy_tables.json"
    out.write_text(json.dumps(tables, ensure_ascii=True, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------

def _read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line != ""]


def _trim(row) -> list[int]:
    ids = [int(x) for x in row]
    n = len(ids)
    while n > 0 and ids[n - 1] == 0:
        n -= 1
    return ids[:n]


def extra_strings(templates: list[str], classes: list[str]) -> list[str]:
    rng = random.Random(20240601)
    s: list[str] = []
    s += [
        "Hello World!", "", " ", "   \t\n  ", "a", "!", "0", "12345", "3.14159", "1,000,000",
        "a photo of a cat.", "A PHOTO OF A CAT.", "It's a dog's life", "we're they've I'm you'll he'd",
        "IT'S WE'RE", "don't can't won't", "rock'n'roll", "'s 't 're", "''''", "\"quoted\"",
        "<start_of_text>", "<end_of_text>", "a <start_of_text> b", "x<end_of_text>y",
        "<<start_of_text>", "<START_OF_TEXT>", "<start_of_text><end_of_text>",
        "e-mail user@example.com http://example.com/a?b=c&d=e#f", "C++ & C# / F#", "$100 €200 £300 ¥400",
        "100% 50°C 3×4 ½ ¾ ²³", "ℕ ℤ ℚ ℝ ℂ", "α β γ Δ Ω", "ΣΑΣ ΟΔΟΣ σοφός", "İstanbul ıI", "Straße STRASSE ẞ",
        "naïve café résumé façade jalapeño", "Ångström Øre Æsir œuvre", "Dvořák Łódź Čapek", "Ñandú",
        "日本語のテキスト", "中文字符测试", "한국어 텍스트", "Привет, мир!", "مرحبا بالعالم", "שלום עולם",
        "हिन्दी पाठ", "ภาษาไทย", "😀 😃 😄 🐱 🐶 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇺🇸",
        "“curly double” ‘curly single’ it’s ‚low‛ „low double‟ ʼmodifier",
        "ﬁnancial ﬂoor ﬀ ﬃ ﬄ ﬅ ﬆ Ĳssel ĳs ǅ ǈ ǋ ŉ", "ＬＯＵＤ　ＮＯＩＳＥＳ ｆｕｌｌｗｉｄｔｈ １２３ ！？",
        "ﾊﾝｶｸ ｶﾀｶﾅ Ｕﾀｰﾝ", "e\u0301 (combining) vs é", "A\u030a vs Å vs Å", "\u1100\u1161\u11a8 hangul jamo",
        "tab\there", "new\nline", "cr\rlf\r\n", "nbsp\u00a0here", "ideographic\u3000space",
        "line\u2028sep para\u2029sep", "next\u0085line", "zero\u200bwidth", "zwj\u200dzwnj\u200c",
        "file\x1csep\x1dgroup\x1erec\x1funit", "ctrl\x00\x01\x07\x08\x0b\x0c\x0e\x7f", "bom\ufeffinside",
        "\ufeffleading bom", "\x1b[36;44mcolored\x1b[0m text", "soft\u00adhyphen", "rtl\u200fmark\u202e",
        "arabic ctrl\u206a\u206f", "interlinear\ufff9\ufffa\ufffb obj\ufffc repl\ufffd",
        "   leading and trailing   ", "multiple     spaces\t\t\tand tabs",
        "&amp; &lt; &gt; &quot; &#39; &apos;", "&amp;amp; &amp;lt;tag&amp;gt;", "&amp;amp;amp;lt;",
        "&copy; &reg; &trade; &hellip; &mdash; &ndash; &nbsp;x", "&eacute;t&eacute; &Eacute; &EACUTE; &eACUTE;",
        "P&EACUTE;REZ BUNDESSTRA&SZLIG;E &NTILDE; &nTILDE;", "&#65;&#66;&#x43;&#X44; &#x1F600; &#128512;",
        "&#0; &#128; &#150; &#x80; &#xD800; &#x110000; &#99999999999999999999;", "&#65 &#x41 &#; &#x;",
        "&amp &lt &gt &copy &reg &notit &not it; &notin; this&not that", "&ampx &ltfoo &AMP &LT; &GT",
        "&Jscr;ohn &HilbertSpace;ancock &checkmark;", "&unknown; &zzzz; & ; &&;", "a & b && c",
        "<b>bold</b> &amp; &lt;i&gt;", "x < y &amp; y > z", "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#x26;amp; &#38;lt;", "&frac12; &frac14 &sup2; &deg;", "&NotNestedGreaterGreater; &nGt; &acE;",
        "mojibake: cafÃ© rÃ©sumÃ© naÃ¯ve", "âœ” No problems", "â€œquotedâ€\x9d and â€˜singleâ€™",
        "sÃ³", "voilÃ le travail", "Ã la mode", "The Mona Lisa doesnÃƒÂ¢Ã¢â€šÂ¬Ã¢â€žÂ¢t have eyebrows.",
        "&macr;\\_(ã\x83\x84)_/&macr;", "Broken text&hellip; it&#x2019;s ﬂubberiﬁc!", "ÃƒÂ©", "Ã©tÃ©",
        "â€\x9d", "Ã¢â‚¬â„¢", "Ð\x9fÑ€Ð¸Ð²ÐµÑ‚", "ÐŸÑ€Ð¸Ð²ÐµÑ‚", "Ã¤Ã¶Ã¼ÃŸ", "Ã\xa0 la carte", "c1 \x80\x81\x90\x9f controls",
        "win\x93quoted\x94 \x96 dash \x85", "æ—¥æœ¬èªž", "ðŸ˜€ emoji mojibake", "This is â€œmojibakeâ€� text",
        "l'Ã©tÃ© Ã  Paris", "Ã\x83Â©", "naÃ¯ve cafÃ©\nline2 Ã©", "fÃ cil", "Ã s vezes",
        "√±", "‚Äú MacRoman ‚Äù", "√© √º", "вЂ” cp1251", "Ð¡Ñ\x82Ñ\x80Ð¾ÐºÐ°",
        "ÎºÎ±Î»Î·Î¼Î­Ï\x81Î±", "××•×œ×", "à¸ªà¸§à¸±à¸ªà¸”à¸µ", "Ø§Ù„Ø¹Ø±Ø¨ÙŠØ©",
        "a" * 200, "word " * 100, "supercalifragilisticexpialidocious " * 10,
        "1234567890" * 20, "!@#$%^&*()_+-=[]{}|;:,.<>/?`~" * 5, "😀" * 100,
        "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "lowerUPPERMixedCase camelCaseWord",
        "snake_case_word kebab-case-word dot.separated.word", "##hash @mention", "...!!!???",
        "a photo of a {}.", "{c}", "itap of a {}.", "\\n \\t \\u0041 \\x41",
    ]
    # every template with some unicode / tricky class names
    tricky = [
        "café", "jalapeño", "Éclair", "naïve art", "ﬁsh", "ＣＡＴ", "“dog”", "it’s", "crème brûlée",
        "&amp; co", "R&amp;B", "A&ampB", "smörgåsbord", "Ümlaut", "piña colada", "señor", "日本", "🐱",
        "Ã©clair", "o’clock", "rock ’n’ roll", "Ǆungla", "straße", "ΣΟΦΙΑ", "İzmir",
    ]
    for t in templates:
        for c in rng.sample(tricky, 6):
            s.append(t.replace("{c}", c))
    # random character soup
    pools = [
        "abcdefghijklmnopqrstuvwxyz     ",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()[]{}",
        "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞß ",
        "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u02bc ﬀﬁﬂﬃﬄﬅﬆĳĲ",
        "ＡＢＣａｂｃ１２３！＂＃＄％＆＇（）　ｱｲｳ",
        "\t\n\r\x0b\x0c\u00a0\u2000\u2003\u3000\u2028\u2029\x85\x1c\x1f ",
        "&;#x0123456789amplt gt quot nbsp copy AMP LT",
        "中文日本語한국어Привет",
        "😀🐱🐶👍🏽\u200d❤️🇺🇸",
        "\u0301\u0308\u0327\u030a e a o",
    ]
    for _ in range(1500):
        k = rng.randint(1, 3)
        pool = "".join(rng.sample(pools, k))
        n = rng.randint(1, 40)
        s.append("".join(rng.choice(pool) for _ in range(n)))
    # random HTML entity strings
    names = sorted(html.entities.html5.keys())
    for _ in range(600):
        parts = []
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            if r < 0.5:
                name = rng.choice(names)
                if rng.random() < 0.2:
                    name = name.upper()
                parts.append("&" + name)
            elif r < 0.7:
                parts.append("&#%d;" % rng.choice([rng.randint(0, 300), rng.randint(0, 0x11000)]))
            elif r < 0.8:
                parts.append("&#x%x%s" % (rng.randint(0, 0x2FFFF), rng.choice([";", "", " "])))
            else:
                parts.append(rng.choice(["word", " ", "&", "amp;", "x", "é", "<", "1"]))
        s.append("".join(parts))
    # mojibake of random accented / symbol text through several encodings
    src_words = [
        "café", "naïve", "résumé", "“quoted”", "it’s", "–dash—", "€100", "…", "Straße", "Ørsted",
        "Привет", "Ελλάδα", "日本語", "😀", "Łódź", "ǅ", "½°", "señor", "garçon", "doesn’t", "• bullet",
    ]
    for _ in range(600):
        text = " ".join(rng.choice(src_words) for _ in range(rng.randint(1, 4)))
        enc = rng.choice(["latin-1", "windows-1252", "windows-1251", "windows-1250", "macroman", "cp437"])
        try:
            moj = text.encode("utf-8").decode(enc, errors="replace")
        except LookupError:
            continue
        if rng.random() < 0.3:
            moj = "plain words " + moj + " and more"
        s.append(moj)
    # long strings (truncation)
    for _ in range(100):
        s.append(" ".join(rng.choice(classes) for _ in range(rng.randint(20, 60))))
    return s


def make_fixtures() -> None:
    import numpy as np
    import open_clip
    import torch  # noqa: F401

    tok = open_clip.get_tokenizer("ViT-B-32")
    meta = SHARED / "data" / "imagenet" / "meta"
    tpath = meta / "templates_openai_80.txt"
    cpath = meta / "classnames_openai.txt"
    if not tpath.exists() or not cpath.exists():
        sys.exit(f"missing {tpath} or {cpath}: set CLIP_ATLAS_SHARED")
    templates = _read_lines(tpath)
    classes = _read_lines(cpath)
    assert len(templates) == 80 and len(classes) == 1000, (len(templates), len(classes))

    fx = CRATE / "tests" / "fixtures"
    fx.mkdir(parents=True, exist_ok=True)

    texts = [t.replace("{c}", c) for t in templates for c in classes]
    ids = tok(texts).numpy()
    buf = bytearray(b"ATOK1")
    buf += struct.pack("<III", len(templates), len(classes), 77)
    for row in ids:
        r = _trim(row)
        assert len(r) < 256
        buf += struct.pack("<B", len(r))
        buf += np.asarray(r, dtype="<u2").tobytes()
    with gzip.GzipFile(fx / "templates_ids.bin.gz", "wb", compresslevel=9, mtime=0) as f:
        f.write(bytes(buf))

    extras = extra_strings(templates, classes)
    lines = []
    for i, text in enumerate(extras):
        ctx = 77
        if i % 17 == 5:
            ctx = [8, 16, 32, 128][(i // 17) % 4]
        row = tok([text], context_length=ctx)[0].numpy()
        lines.append(json.dumps({"text": text, "ctx": ctx, "ids": _trim(row)}, ensure_ascii=True))
    with gzip.GzipFile(fx / "extra.jsonl.gz", "wb", compresslevel=9, mtime=0) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))
    print(f"templates x classes: {len(texts)} strings; extras: {len(extras)} strings")
    hello = tok(["Hello World!"])[0][:5].tolist()
    print("Hello World! ->", hello)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", action="store_true")
    ap.add_argument("--fixtures", action="store_true")
    a = ap.parse_args()
    both = not a.tables and not a.fixtures
    if a.tables or both:
        make_tables()
    if a.fixtures or both:
        make_fixtures()


if __name__ == "__main__":
    main()
