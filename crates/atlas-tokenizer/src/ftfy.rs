//! A port of `ftfy.fix_text` (ftfy 6.3, default `TextFixerConfig`), as called by open_clip.
//!
//! Covered, in ftfy's order and with its fixed-point loop per line segment:
//! `unescape_html` ("auto": off for a segment containing `<`, and for every later one),
//! `fix_encoding` (mojibake: the single-byte encodings ftfy tries, `restore_byte_a0`,
//! `replace_lossy_sequences`, the `utf-8-variants` codec, `decode_inconsistent_utf8`, the
//! latin-1 -> windows-1252 fallback, with ftfy's own `is_bad` heuristic), `fix_c1_controls`,
//! `fix_latin_ligatures`, `fix_character_width`, `uncurl_quotes`, `fix_line_breaks`,
//! `remove_terminal_escapes`, `remove_control_chars`, NFC.
//!
//! Not covered: `fix_surrogates` (a Rust `&str` cannot hold surrogates, so it is a no-op),
//! and Unicode-version differences (CPython 3.11 uses Unicode 14 for `unicodedata`, NFC and
//! `str.lower`; this crate uses the Unicode tables of `unicode-normalization` and Rust's std).

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::bytes::Regex as BytesRegex;
use unicode_normalization::UnicodeNormalization;

use crate::pyclean::html_unescape;
use crate::tables::{Tables, tables};

const MAX_DECODE_LENGTH: usize = 1_000_000;

struct Res {
    altered_utf8: BytesRegex,
    lossy_utf8: BytesRegex,
    ansi: regex::Regex,
}

fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| {
        let b = |p: &str| match BytesRegex::new(p) {
            Ok(r) => r,
            Err(e) => panic!("atlas-tokenizer: bad built-in regex {p}: {e}"),
        };
        Res {
            altered_utf8: b(concat!(
                r"(?-u)[\xc2\xc3\xc5\xce\xd0\xd9][ ]",
                r"|[\xe2\xe3][ ][\x80-\x84\x86-\x9f\xa1-\xbf]",
                r"|[\xe0-\xe3][\x80-\x84\x86-\x9f\xa1-\xbf][ ]",
                r"|[\xf0][ ][\x80-\xbf][\x80-\xbf]",
                r"|[\xf0][\x80-\xbf][ ][\x80-\xbf]",
                r"|[\xf0][\x80-\xbf][\x80-\xbf][ ]"
            )),
            lossy_utf8: b(concat!(
                r"(?-u)[\xc2-\xdf][\x1a]",
                r"|[\xc2-\xc3][?]",
                r"|\xed[\xa0-\xaf][\x1a?]\xed[\xb0-\xbf][\x1a?\x80-\xbf]",
                r"|\xed[\xa0-\xaf][\x1a?\x80-\xbf]\xed[\xb0-\xbf][\x1a?]",
                r"|[\xe0-\xef][\x1a?][\x1a\x80-\xbf]",
                r"|[\xe0-\xef][\x1a\x80-\xbf][\x1a?]",
                r"|[\xf0-\xf4][\x1a?][\x1a\x80-\xbf][\x1a\x80-\xbf]",
                r"|[\xf0-\xf4][\x1a\x80-\xbf][\x1a?][\x1a\x80-\xbf]",
                r"|[\xf0-\xf4][\x1a\x80-\xbf][\x1a\x80-\xbf][\x1a?]",
                r"|\x1a"
            )),
            ansi: match regex::Regex::new(r"\x1b\[(?:\d|;)*[a-zA-Z]") {
                Ok(r) => r,
                Err(e) => panic!("atlas-tokenizer: bad built-in regex: {e}"),
            },
        }
    })
}

/// `ftfy.fix_text(text)` with the default configuration.
pub fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.find('\n').map_or(rest.len(), |p| p + 1);
        if let Some((b, _)) = rest[..end].char_indices().nth(MAX_DECODE_LENGTH) {
            end = b;
        }
        let segment = &rest[..end];
        if segment.contains('<') {
            unescape = false;
        }
        out.push_str(&fix_segment(segment, unescape));
        rest = &rest[end..];
    }
    out
}

fn fix_segment(text: &str, unescape: bool) -> String {
    // Fast path: printable ASCII (plus tab, newline, form feed) without `&` is a fixed point.
    if text
        .bytes()
        .all(|b| matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\x0c') && b != b'&')
    {
        return text.to_string();
    }
    let t = tables();
    let mut text = text.to_string();
    loop {
        let orig = text.clone();
        if unescape {
            text = ftfy_unescape_html(&text, t);
        }
        text = fix_encoding(&text);
        text = fix_c1_controls(&text, t);
        text = translate(&text, &t.ligatures);
        text = translate(&text, &t.width_map);
        text = uncurl_quotes(&text);
        text = fix_line_breaks(&text);
        text = res().ansi.replace_all(&text, "").into_owned();
        text = text
            .chars()
            .filter(|c| !t.control_chars.contains(c))
            .collect();
        text = text.nfc().collect();
        if text == orig {
            return text;
        }
    }
}

fn translate(text: &str, map: &std::collections::HashMap<char, String>) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match map.get(&c) {
            Some(s) => out.push_str(s),
            None => out.push(c),
        }
    }
    out
}

fn uncurl_quotes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{201c}'..='\u{201f}' => '"',
            '\u{02bc}' | '\u{2018}'..='\u{201b}' => '\'',
            c => c,
        })
        .collect()
}

fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// ftfy's `unescape_html`: `&#?[0-9A-Za-z]{1,24};` replaced by ftfy's entity table, or by
/// `html.unescape` for numeric references that it fully consumes.
fn ftfy_unescape_html(text: &str, t: &Tables) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'&' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if j < b.len() && b[j] == b'#' {
            j += 1;
        }
        let k0 = j;
        while j < b.len() && b[j].is_ascii_alphanumeric() {
            j += 1;
        }
        let k = j - k0;
        if (1..=24).contains(&k) && j < b.len() && b[j] == b';' {
            let m = &text[i..=j];
            out.push_str(&text[last..i]);
            if let Some(v) = t.ftfy_entities.get(m) {
                out.push_str(v);
            } else if m.starts_with("&#") {
                let u = html_unescape(m);
                out.push_str(if u.contains(';') { m } else { &u });
            } else {
                out.push_str(m);
            }
            last = j + 1;
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[last..]);
    out
}

fn is_bad(text: &str, t: &Tables) -> bool {
    t.badness_re.is_match(text)
}

/// `ftfy.fix_encoding`.
fn fix_encoding(text: &str) -> String {
    let mut text = text.to_string();
    loop {
        let next = fix_encoding_one_step(&text);
        if next == text {
            return text;
        }
        text = next;
    }
}

fn fix_encoding_one_step(text: &str) -> String {
    let t = tables();
    if text.is_empty() || text.is_ascii() || !is_bad(text, t) {
        return text.to_string();
    }
    let mut possible_latin1 = false;
    for cm in &t.charmaps {
        if !text.chars().all(|c| cm.allowed.contains(&c)) {
            continue;
        }
        if cm.name == "latin-1" {
            possible_latin1 = true;
        }
        let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
        let mut ok = true;
        for c in text.chars() {
            match cm.encode.get(&c) {
                Some(&b) => bytes.push(b),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        if cm.name != "macroman" && res().altered_utf8.is_match(&bytes) {
            bytes = restore_byte_a0(&bytes);
        }
        if cm.name.starts_with("sloppy") {
            bytes = res()
                .lossy_utf8
                .replace_all(&bytes, &b"\xef\xbf\xbd"[..])
                .into_owned();
        }
        let decoded = if bytes.contains(&0xED) || bytes.contains(&0xC0) {
            decode_utf8_variants(&bytes)
        } else {
            String::from_utf8(bytes).ok()
        };
        if let Some(s) = decoded {
            return s;
        }
    }
    if let Ok(true) = t.utf8_detector_re.is_match(text) {
        let fixed = decode_inconsistent_utf8(text, t);
        if fixed != text {
            return fixed;
        }
    }
    if possible_latin1 {
        // encode latin-1 (every char < U+0100 here) and decode strict windows-1252
        let mut fixed = String::with_capacity(text.len());
        let mut ok = true;
        for c in text.chars() {
            match u8::try_from(u32::from(c))
                .ok()
                .and_then(|b| t.windows_1252_strict[usize::from(b)])
            {
                Some(d) => fixed.push(d),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && fixed != text {
            return fixed;
        }
    }
    if text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
        return fix_c1_controls(text, t);
    }
    text.to_string()
}

/// `[\x80-\x9f]` -> `.encode("latin-1").decode("sloppy-windows-1252")`.
fn fix_c1_controls(text: &str, t: &Tables) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let sloppy = t.charmaps.iter().find(|c| c.name == "sloppy-windows-1252");
    text.chars()
        .map(|c| match (u32::from(c), sloppy) {
            (cp @ 0x80..=0x9f, Some(cm)) => cm.decode[cp as usize],
            _ => c,
        })
        .collect()
}

fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    // A_GRAVE_WORD_RE = b"\xc3 (?! |quele|quela|quilo|s )" -> b"\xc3\xa0 "
    let mut tmp = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xc3 && bytes.get(i + 1) == Some(&b' ') {
            let after = &bytes[i + 2..];
            let blocked = [&b" "[..], b"quele", b"quela", b"quilo", b"s "]
                .iter()
                .any(|p| after.starts_with(p));
            if !blocked {
                tmp.extend_from_slice(b"\xc3\xa0 ");
                i += 2;
                continue;
            }
        }
        tmp.push(bytes[i]);
        i += 1;
    }
    res()
        .altered_utf8
        .replace_all(&tmp, |c: &regex::bytes::Captures<'_>| {
            c[0].iter()
                .map(|&b| if b == b' ' { 0xa0 } else { b })
                .collect::<Vec<u8>>()
        })
        .into_owned()
}

/// ftfy's `utf-8-variants` codec (strict): UTF-8 plus CESU-8 surrogate pairs and `C0 80`.
fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0xC0 && bytes.get(i + 1) == Some(&0x80) {
            out.push_str(std::str::from_utf8(&bytes[start..i]).ok()?);
            out.push('\0');
            i += 2;
            start = i;
        } else if b == 0xED
            && i + 5 < bytes.len()
            && (0xA0..=0xAF).contains(&bytes[i + 1])
            && (0x80..=0xBF).contains(&bytes[i + 2])
            && bytes[i + 3] == 0xED
            && (0xB0..=0xBF).contains(&bytes[i + 4])
            && (0x80..=0xBF).contains(&bytes[i + 5])
        {
            out.push_str(std::str::from_utf8(&bytes[start..i]).ok()?);
            let hi =
                0xD000 + (u32::from(bytes[i + 1] & 0x3F) << 6) + u32::from(bytes[i + 2] & 0x3F);
            let lo =
                0xD000 + (u32::from(bytes[i + 4] & 0x3F) << 6) + u32::from(bytes[i + 5] & 0x3F);
            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            out.push(char::from_u32(cp)?);
            i += 6;
            start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(std::str::from_utf8(&bytes[start..]).ok()?);
    Some(out)
}

fn decode_inconsistent_utf8(text: &str, t: &Tables) -> String {
    let nchars = text.chars().count();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in t.utf8_detector_re.find_iter(text) {
        let Ok(m) = m else { break };
        out.push_str(&text[last..m.start()]);
        let sub = m.as_str();
        let fixed: Cow<'_, str> = if sub.chars().count() < nchars && is_bad(sub, t) {
            Cow::Owned(fix_encoding(sub))
        } else {
            Cow::Borrowed(sub)
        };
        out.push_str(&fixed);
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::fix_text;

    #[test]
    fn ftfy_docstring_examples() {
        assert_eq!(fix_text("âœ” No problems"), "✔ No problems");
        assert_eq!(fix_text("&macr;\\_(ã\u{83}\u{84})_/&macr;"), "¯\\_(ツ)_/¯");
        assert_eq!(
            fix_text("Broken text&hellip; it&#x2019;s ﬂubberiﬁc!"),
            "Broken text… it's flubberific!"
        );
        assert_eq!(fix_text("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
        assert_eq!(fix_text("sÃ³"), "só");
        assert_eq!(fix_text("voilÃ le travail"), "voilà le travail");
    }
}
