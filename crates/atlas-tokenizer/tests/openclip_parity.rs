//! Id-for-id parity with open_clip's tokenizer, against fixtures made by
//! `tools/parity/make_tokenizer_fixtures.py` (no Python needed here).

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use atlas_tokenizer::{ClipBpeTokenizer, TextTokenizer};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn gunzip(path: &PathBuf) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("gunzip {}: {e}", path.display()));
    out
}

fn shared_meta() -> PathBuf {
    let shared = std::env::var_os("CLIP_ATLAS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    shared.join("data").join("imagenet").join("meta")
}

fn lines(path: &PathBuf) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): this test needs the shared data; set CLIP_ATLAS_SHARED to the shared folder",
            path.display()
        )
    });
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn pad(ids: &[u32], ctx: usize) -> Vec<u32> {
    let mut v = ids.to_vec();
    v.resize(ctx, 0);
    v
}

#[test]
fn hello_world() {
    let tok = ClipBpeTokenizer::bundled(77).unwrap();
    let ids = tok.tokenize(&["Hello World!"]).unwrap();
    assert_eq!(ids[0].len(), 77);
    assert_eq!(&ids[0][..5], &[49406, 3306, 1002, 256, 49407]);
    assert!(ids[0][5..].iter().all(|&x| x == 0));
    assert_eq!(tok.eot_id(), 49407);
    assert_eq!(tok.context_length(), 77);
}

#[test]
fn templates_times_classes_match_open_clip() {
    let meta = shared_meta();
    let templates = lines(&meta.join("templates_openai_80.txt"));
    let classes = lines(&meta.join("classnames_openai.txt"));
    let raw = gunzip(&fixtures().join("templates_ids.bin.gz"));
    assert_eq!(&raw[..5], b"ATOK1");
    let u32_at =
        |o: usize| u32::from_le_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]) as usize;
    let (nt, nc, ctx) = (u32_at(5), u32_at(9), u32_at(13));
    assert_eq!(
        (nt, nc),
        (templates.len(), classes.len()),
        "fixture was made from other template/class files"
    );
    let mut pos = 17;
    let mut expected = Vec::with_capacity(nt * nc);
    for _ in 0..nt * nc {
        let n = raw[pos] as usize;
        pos += 1;
        let ids: Vec<u32> = (0..n)
            .map(|k| u32::from(u16::from_le_bytes([raw[pos + 2 * k], raw[pos + 2 * k + 1]])))
            .collect();
        pos += 2 * n;
        expected.push(pad(&ids, ctx));
    }
    assert_eq!(pos, raw.len());
    let texts: Vec<String> = templates
        .iter()
        .flat_map(|t| classes.iter().map(move |c| t.replace("{c}", c)))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let tok = ClipBpeTokenizer::bundled(ctx).unwrap();
    let t0 = Instant::now();
    let got = tok.tokenize(&refs).unwrap();
    let dt = t0.elapsed();
    let mut mismatches = 0;
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        if g != e {
            if mismatches < 10 {
                eprintln!("MISMATCH {:?}\n  got {:?}\n  want {:?}", refs[i], g, e);
            }
            mismatches += 1;
        }
    }
    println!(
        "templates x classes: compared {} strings, {} mismatches, tokenized in {:.2?}",
        refs.len(),
        mismatches,
        dt
    );
    assert_eq!(got.len(), expected.len());
    assert_eq!(mismatches, 0);
}

#[derive(serde::Deserialize)]
struct Extra {
    text: String,
    ctx: usize,
    ids: Vec<u32>,
}

#[test]
fn extra_strings_match_open_clip() {
    // ATLAS_TOKENIZER_EXTRA_FIXTURE points at another JSONL.gz of the same shape (fuzzing).
    let path = std::env::var_os("ATLAS_TOKENIZER_EXTRA_FIXTURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures().join("extra.jsonl.gz"));
    let raw = gunzip(&path);
    let text = String::from_utf8(raw).unwrap();
    let tok = ClipBpeTokenizer::bundled(77).unwrap();
    let mut n = 0;
    let mut mismatches = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let e: Extra = serde_json::from_str(line).unwrap();
        let got = tok
            .tokenize_with_context(&[e.text.as_str()], e.ctx)
            .unwrap()
            .remove(0);
        let want = pad(&e.ids, e.ctx);
        n += 1;
        if got != want {
            if mismatches < 40 {
                eprintln!(
                    "MISMATCH ctx={} {:?}\n  cleaned {:?}\n  got  {:?}\n  want {:?}",
                    e.ctx,
                    e.text,
                    atlas_tokenizer::clean_lower(&e.text),
                    &got[..got.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1)],
                    e.ids
                );
            }
            mismatches += 1;
        }
    }
    println!("extra strings: compared {n} strings, {mismatches} mismatches");
    assert!(n >= 3000, "only {n} extra strings");
    assert_eq!(mismatches, 0);
}
