//! ARCHITECTURE.md's "Cache keys" table lists, per key, exactly the fields `keys.rs` feeds, in
//! that order (`keys::catalog()` records them while building each key).

fn doc_rows() -> Vec<(String, String, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ARCHITECTURE.md");
    let text = std::fs::read_to_string(path).expect("ARCHITECTURE.md");
    let section = text
        .split("## Cache keys")
        .nth(1)
        .expect("a `## Cache keys` section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let mut rows = Vec::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() != 5 || cells[1] == "artifact" || cells[1].starts_with("---") {
            continue;
        }
        let fields = cells[3]
            .split(',')
            .map(|f| f.trim().trim_matches('`').to_string())
            .filter(|f| !f.is_empty())
            .collect();
        rows.push((
            cells[1].to_string(),
            cells[2].trim_matches('`').to_string(),
            fields,
        ));
    }
    rows
}

#[test]
fn architecture_key_table_matches_the_keys_module() {
    let doc = doc_rows();
    let code = atlas_pipeline::keys::catalog();
    assert_eq!(
        doc.len(),
        code.len(),
        "ARCHITECTURE.md documents {} keys, keys.rs builds {}",
        doc.len(),
        code.len()
    );
    for (artifact, kind, fields) in code {
        let row = doc
            .iter()
            .find(|r| r.0 == artifact)
            .unwrap_or_else(|| panic!("ARCHITECTURE.md has no key row for `{artifact}`"));
        assert_eq!(row.1, kind, "store kind of `{artifact}`");
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        assert_eq!(row.2, fields, "key fields of `{artifact}`");
    }
}
