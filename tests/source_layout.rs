//! The workspace's source layout rules (ARCHITECTURE.md, "Architecture invariants"):
//! - no `use` cycle between the top-level modules of a crate: a module that uses another never
//!   gets used back by it (directly or through others). Edges are read from `crate::x` / `super::x`
//!   paths, `use crate::{a, b::c}` groups, and names the crate root re-exports (`pub use x::Y`,
//!   so `crate::Y` is an edge to `x`);
//! - no source file over 600 lines (data tables excepted by name below).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;
/// Files that are data, not logic (none today; a generated table would go here).
const DATA_TABLES: &[&str] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name()
                .is_some_and(|n| n == "fixtures" || n == "target")
            {
                continue;
            }
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Identifiers at brace depth 0 of a `{...}` group starting after `open`, each with the first
/// path segment only (`b::c` -> `b`).
fn group_heads(text: &str) -> Vec<String> {
    let mut depth = 0;
    let mut cur = String::new();
    let mut out = Vec::new();
    let mut at_head = true;
    for ch in text.chars() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                at_head = true;
            }
            ':' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                at_head = false;
            }
            c if depth == 0 && at_head && (c.is_alphanumeric() || c == '_') => cur.push(c),
            c if depth == 0 && at_head && !c.is_whitespace() => at_head = false,
            _ => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// First segments of every `prefix`-rooted path in `src` (`crate::x::..`, `crate::{a, b}`).
fn referenced(src: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(g) = rest.strip_prefix('{') {
            out.extend(group_heads(g));
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Strips `//` comments (doc comments mention paths that are not uses).
fn code(src: &str) -> String {
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level module -> modules it uses, for the crate whose `src` is given.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let lib = code(&std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default());
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let p = entry.path();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.is_dir()
            || (p.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main")
        {
            modules.insert(stem);
        }
    }
    // Names re-exported by the crate root: `pub use module::{A, B}` / `pub use module::A`.
    let mut reexport: BTreeMap<String, String> = BTreeMap::new();
    for stmt in lib.split(';') {
        let s = stmt.trim();
        let Some(path) = s.strip_prefix("pub use ") else {
            continue;
        };
        let path = path
            .trim_start_matches("crate::")
            .trim_start_matches("self::");
        let Some((m, items)) = path.split_once("::") else {
            continue;
        };
        if !modules.contains(m) {
            continue;
        }
        let items = items.trim();
        let names = match items.strip_prefix('{') {
            Some(g) => group_heads(g),
            None => vec![items.rsplit("::").next().unwrap_or(items).to_string()],
        };
        for n in names {
            reexport.insert(n, m.to_string());
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &modules {
        let mut files = Vec::new();
        let file = src.join(format!("{m}.rs"));
        if file.is_file() {
            files.push(file);
        }
        rs_files(&src.join(m), &mut files);
        let mut uses = BTreeSet::new();
        for f in files {
            let text = code(&std::fs::read_to_string(&f).unwrap());
            let top_level = f.parent() == Some(src);
            let mut names = referenced(&text, "crate::");
            if top_level {
                names.extend(referenced(&text, "super::"));
            }
            for n in names {
                let target = if modules.contains(&n) {
                    Some(n)
                } else {
                    reexport.get(&n).cloned()
                };
                if let Some(t) = target
                    && &t != m
                {
                    uses.insert(t);
                }
            }
        }
        graph.insert(m.clone(), uses);
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for next in g.get(n).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n).copied().unwrap_or(0) == 0
            && let Some(c) = visit(n, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn crates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("src/lib.rs").is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn no_use_cycle_between_the_modules_of_any_crate() {
    let mut checked = 0;
    let mut cycles = Vec::new();
    for c in crates() {
        let g = module_graph(&c.join("src"));
        checked += g.len();
        if let Some(cycle) = find_cycle(&g) {
            cycles.push(format!("{}: {}", c.display(), cycle.join(" -> ")));
        }
    }
    assert!(
        checked > 50,
        "only {checked} modules found: is the layout walk broken?"
    );
    // Known edges, so a parser that sees nothing cannot pass.
    let models = module_graph(&root().join("crates/atlas-models/src"));
    assert!(
        models["load"].contains("checkpoint"),
        "{:?}",
        models["load"]
    );
    let pipeline = module_graph(&root().join("crates/atlas-pipeline/src"));
    assert!(
        pipeline["execute"].contains("plan"),
        "{:?}",
        pipeline["execute"]
    );
    assert!(cycles.is_empty(), "use cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    // A crate written here with `a` using `b` (through a root re-export) and `b` using `a`.
    let dir = std::env::temp_dir().join(format!("atlas-layout-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod a;\nmod b;\npub use b::{Thing, other::More};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a.rs"),
        "use crate::Thing;\n// crate::c is a comment\n",
    )
    .unwrap();
    std::fs::write(src.join("b.rs"), "mod x;\n").unwrap();
    std::fs::write(src.join("b/x.rs"), "use crate::{a::f, b};\n").unwrap();
    let g = module_graph(&src);
    let cycle = find_cycle(&g);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(g["a"], BTreeSet::from(["b".to_string()]));
    assert_eq!(
        cycle.as_deref(),
        Some(&["a".to_string(), "b".to_string(), "a".to_string()][..])
    );
}

#[test]
fn no_source_file_over_600_lines() {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rs_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 100, "only {} files found", files.len());
    let long: Vec<String> = files
        .iter()
        .filter(|f| !DATA_TABLES.iter().any(|d| f.ends_with(d)))
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).ok()?.lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these files by concern:\n{}",
        long.join("\n")
    );
}
