//! Python string semantics that open_clip's cleaning relies on: `str.isspace`,
//! `str.strip`, `" ".join(s.split())`, `str.lower`, and `html.unescape`.

use crate::tables::tables;

/// `str.isspace()` for one character (CPython: bidi class WS/B/S or category Zs).
pub(crate) fn py_isspace(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// `text.strip()`.
pub(crate) fn py_strip(text: &str) -> &str {
    text.trim_matches(py_isspace)
}

/// `" ".join(text.split())` (which is also stripped).
pub(crate) fn py_whitespace_clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(py_isspace).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `text.lower()` (full Unicode lowercase mapping, with final-sigma handling, as CPython).
pub(crate) fn py_lower(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.to_lowercase()
    }
}

/// Python's `html.unescape`: named entities of HTML5 (with the longest-prefix rule for
/// names without a semicolon), decimal and hex character references (with the HTML5
/// replacement table for invalid ones).
pub fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let t = tables();
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '&' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match match_charref(&chars, i + 1) {
            Some(end) => {
                let s: String = chars[i + 1..end].iter().collect();
                replace_charref(&s, t, &mut out);
                i = end;
            }
            None => {
                out.push('&');
                i += 1;
            }
        }
    }
    out
}

/// Match `#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?` at `start`; returns the end.
fn match_charref(c: &[char], start: usize) -> Option<usize> {
    let n = c.len();
    if start < n && c[start] == '#' {
        // decimal
        let mut j = start + 1;
        while j < n && c[j].is_ascii_digit() {
            j += 1;
        }
        if j > start + 1 {
            return Some(if j < n && c[j] == ';' { j + 1 } else { j });
        }
        // hex
        if start + 1 < n && (c[start + 1] == 'x' || c[start + 1] == 'X') {
            let mut j = start + 2;
            while j < n && c[j].is_ascii_hexdigit() {
                j += 1;
            }
            if j > start + 2 {
                return Some(if j < n && c[j] == ';' { j + 1 } else { j });
            }
        }
        return None; // '#' is excluded from the named alternative
    }
    let mut j = start;
    while j < n
        && j - start < 32
        && !matches!(c[j], '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';')
    {
        j += 1;
    }
    if j == start {
        return None;
    }
    Some(if j < n && c[j] == ';' { j + 1 } else { j })
}

fn replace_charref(s: &str, t: &crate::tables::Tables, out: &mut String) {
    if let Some(rest) = s.strip_prefix('#') {
        let (digits, radix) = match rest.strip_prefix(['x', 'X']) {
            Some(h) => (h, 16),
            None => (rest, 10),
        };
        let digits = digits.trim_end_matches(';');
        // Saturate: anything above 0x10FFFF behaves the same.
        let mut num: u64 = 0;
        for d in digits.chars() {
            let v = u64::from(d.to_digit(radix).unwrap_or(0));
            num = num
                .saturating_mul(radix as u64)
                .saturating_add(v)
                .min(0x1_0000_0000);
        }
        if let Some(rep) = u32::try_from(num)
            .ok()
            .and_then(|n| t.invalid_charrefs.get(&n))
        {
            out.push_str(rep);
            return;
        }
        if (0xD800..=0xDFFF).contains(&num) || num > 0x10FFFF {
            out.push('\u{FFFD}');
            return;
        }
        let n = num as u32;
        if t.invalid_codepoints.contains(&n) {
            return;
        }
        if let Some(ch) = char::from_u32(n) {
            out.push(ch);
        }
        return;
    }
    if let Some(v) = t.html5.get(s) {
        out.push_str(v);
        return;
    }
    // longest prefix (at least 2 chars) that is an entity name
    let idx: Vec<usize> = s.char_indices().map(|(b, _)| b).collect();
    let nchars = idx.len();
    for x in (2..nchars).rev() {
        let (head, tail) = s.split_at(idx[x]);
        if let Some(v) = t.html5.get(head) {
            out.push_str(v);
            out.push_str(tail);
            return;
        }
    }
    out.push('&');
    out.push_str(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isspace_matches_python_table() {
        let t = tables();
        for cp in 0..0x11_0000u32 {
            if let Some(c) = char::from_u32(cp) {
                assert_eq!(py_isspace(c), t.python_space.contains(&cp), "U+{cp:04X}");
            }
        }
    }

    #[test]
    fn unescape_basics() {
        assert_eq!(
            html_unescape("&amp;lt; &lt &notit; &#65;&#x42;"),
            "&lt; < ¬it; AB"
        );
        assert_eq!(
            html_unescape("&#0; &#128; &#xD800; &#99999999999999999;"),
            "\u{FFFD} € \u{FFFD} \u{FFFD}"
        );
        assert_eq!(html_unescape("&zz; & &#; &#x;"), "&zz; & &#; &#x;");
    }
}
