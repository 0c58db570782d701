//! Tables dumped from CPython / ftfy by `tools/parity/make_tokenizer_fixtures.py --tables`
//! (`src/ftfy_tables.json`), parsed once.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;

pub(crate) const TABLES_JSON: &str = include_str!("ftfy_tables.json");

#[derive(Deserialize)]
struct RawTables {
    html5: HashMap<String, String>,
    invalid_charrefs: HashMap<String, String>,
    invalid_codepoints: Vec<u32>,
    ftfy_entities: HashMap<String, String>,
    ligatures: HashMap<String, String>,
    width_map: HashMap<String, String>,
    control_chars: Vec<u32>,
    charmap_encodings: Vec<String>,
    charmaps: HashMap<String, Vec<Option<String>>>,
    windows_1252_strict: Vec<String>,
    python_space: Vec<u32>,
    badness_re: String,
    utf8_detector_re: String,
}

/// One single-byte encoding ftfy tries (`latin-1`, `sloppy-windows-1252`, ...).
pub(crate) struct Charmap {
    pub name: String,
    pub decode: [char; 256],
    pub encode: HashMap<char, u8>,
    /// Characters `possible_encoding` accepts.
    pub allowed: HashSet<char>,
}

pub(crate) struct Tables {
    pub html5: HashMap<String, String>,
    pub invalid_charrefs: HashMap<u32, String>,
    pub invalid_codepoints: HashSet<u32>,
    pub ftfy_entities: HashMap<String, String>,
    pub ligatures: HashMap<char, String>,
    pub width_map: HashMap<char, String>,
    pub control_chars: HashSet<char>,
    pub charmaps: Vec<Charmap>,
    pub windows_1252_strict: [Option<char>; 256],
    #[cfg_attr(not(test), allow(dead_code))]
    pub python_space: HashSet<u32>,
    pub badness_re: regex::Regex,
    pub utf8_detector_re: fancy_regex::Regex,
}

fn one_char(s: &str) -> Option<char> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

fn build() -> Result<Tables, String> {
    let raw: RawTables =
        serde_json::from_str(TABLES_JSON).map_err(|e| format!("ftfy_tables.json: {e}"))?;
    let mut charmaps = Vec::new();
    for name in &raw.charmap_encodings {
        let table = raw
            .charmaps
            .get(name)
            .ok_or_else(|| format!("ftfy_tables.json: no charmap {name}"))?;
        if table.len() != 256 {
            return Err(format!(
                "ftfy_tables.json: charmap {name} has {} entries",
                table.len()
            ));
        }
        let mut decode = ['\0'; 256];
        let mut encode = HashMap::new();
        for (b, s) in table.iter().enumerate() {
            let c = s
                .as_deref()
                .and_then(one_char)
                .ok_or_else(|| format!("ftfy_tables.json: charmap {name} byte {b} undecodable"))?;
            decode[b] = c;
            encode.insert(c, b as u8);
        }
        let mut allowed: HashSet<char> =
            (0u8..0x80).filter(|&b| b != 0x1a).map(char::from).collect();
        for b in (0x80..0x100).chain([0x1a]) {
            allowed.insert(decode[b]);
        }
        charmaps.push(Charmap {
            name: name.clone(),
            decode,
            encode,
            allowed,
        });
    }
    let mut w1252 = [None; 256];
    for (b, s) in raw.windows_1252_strict.iter().enumerate().take(256) {
        w1252[b] = one_char(s).filter(|&c| c != '\u{FFFD}');
    }
    let char_map = |m: HashMap<String, String>| -> HashMap<char, String> {
        m.into_iter()
            .filter_map(|(k, v)| one_char(&k).map(|c| (c, v)))
            .collect()
    };
    Ok(Tables {
        html5: raw.html5,
        invalid_charrefs: raw
            .invalid_charrefs
            .into_iter()
            .filter_map(|(k, v)| k.parse::<u32>().ok().map(|k| (k, v)))
            .collect(),
        invalid_codepoints: raw.invalid_codepoints.into_iter().collect(),
        ftfy_entities: raw.ftfy_entities,
        ligatures: char_map(raw.ligatures),
        width_map: char_map(raw.width_map),
        control_chars: raw
            .control_chars
            .into_iter()
            .filter_map(char::from_u32)
            .collect(),
        charmaps,
        windows_1252_strict: w1252,
        python_space: raw.python_space.into_iter().collect(),
        badness_re: regex::RegexBuilder::new(&raw.badness_re)
            .size_limit(1 << 26)
            .build()
            .map_err(|e| format!("badness_re: {e}"))?,
        utf8_detector_re: fancy_regex::Regex::new(&raw.utf8_detector_re)
            .map_err(|e| format!("utf8_detector_re: {e}"))?,
    })
}

static TABLES: OnceLock<Tables> = OnceLock::new();

/// The parsed tables. They are compiled into the crate and checked by the unit tests, so a
/// failure here is a build defect, not a user error.
pub(crate) fn tables() -> &'static Tables {
    TABLES.get_or_init(|| match build() {
        Ok(t) => t,
        Err(e) => panic!("atlas-tokenizer: embedded tables are invalid (regenerate with make_tokenizer_fixtures.py --tables): {e}"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_parse() {
        let t = super::build().unwrap();
        assert_eq!(t.charmaps.len(), 10);
        assert_eq!(t.html5.len(), 2231);
    }
}
