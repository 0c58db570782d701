//! Fuzz harness of the safetensors header check (see `atlas-fuzz`; DEVELOPERS.md "Fuzzing").
//! `ATLAS_FUZZ_CASES=1000000 cargo test --release -p atlas-models --test fuzz_header -- --nocapture`

use std::path::Path;

use atlas_fuzz::{Mutator, Rng, Settings};
use atlas_models::header::parse_header;

#[global_allocator]
static ALLOC: atlas_fuzz::CapAlloc = atlas_fuzz::CapAlloc;

/// (JSON header, data bytes) seeds: the dtypes and layouts checkpoints use.
fn seeds() -> Vec<Vec<u8>> {
    let headers = [
        r#"{"__metadata__":{"format":"pt"},"visual.proj":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"logit_scale":{"dtype":"F16","shape":[],"data_offsets":[24,26]}}"#,
        r#"{"a":{"dtype":"BF16","shape":[1,2,2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},"c":{"dtype":"U8","shape":[0],"data_offsets":[16,16]}}"#,
        r#"{"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#,
    ];
    headers.iter().map(|h| h.as_bytes().to_vec()).collect()
}

/// Builds `length | header | data` from a mutated header: the length field is usually right
/// (so the JSON is what is tested), sometimes off or random; the data is usually the size the
/// header's offsets add up to, sometimes shorter or longer.
fn assemble(rng: &mut Rng, header: Vec<u8>) -> Vec<u8> {
    let ends: u64 = String::from_utf8_lossy(&header)
        .split("data_offsets")
        .skip(1)
        .filter_map(|s| {
            let s = s.split(']').next()?;
            s.rsplit(',').next()?.trim().parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0);
    let len = match rng.below(8) {
        0 => rng.next_u64(),
        1 => (header.len() as u64)
            .wrapping_add(rng.below(16) as u64)
            .wrapping_sub(8),
        _ => header.len() as u64,
    };
    let data = match rng.below(8) {
        0 => rng.below(64),
        1 => (ends as usize).min(1 << 16) + rng.below(3),
        _ => (ends as usize).min(1 << 16),
    };
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.resize(out.len() + data, 0xA5);
    out
}

#[test]
fn fuzz_safetensors_header() {
    let dict: &[&[u8]] = &[
        b"\"dtype\"",
        b"\"shape\"",
        b"\"data_offsets\"",
        b"\"F32\"",
        b"\"F4\"",
        b"\"BOOL\"",
        b"\"__metadata__\"",
        b"[0,0]",
        b"18446744073709551615",
        b"-1",
        b"{}",
        b"[]",
    ];
    let mutator = Mutator::new(seeds(), dict.iter().map(|d| d.to_vec()).collect());
    let path = Path::new("fuzz.safetensors");
    let report = atlas_fuzz::run_with(
        "safetensors-header",
        Settings::from_env(),
        |rng| {
            let header = mutator.mutate(rng);
            if rng.one_in(16) {
                header // sometimes the raw bytes, length field and all
            } else {
                assemble(rng, header)
            }
        },
        |input| match parse_header(path, input) {
            Ok((n, tensors)) => {
                // What the loader does next: slice the data section by each tensor's offsets.
                let data = &input[8 + n..];
                for (name, t) in &tensors {
                    let (a, b) = t.data_offsets;
                    assert!(
                        a <= b && b <= data.len(),
                        "{name}: {a}..{b} of {}",
                        data.len()
                    );
                }
                true
            }
            Err(e) => {
                assert!(e.to_string().contains("fuzz.safetensors"), "{e}");
                false
            }
        },
    );
    assert!(
        report.accepted > 0,
        "no mutated header parsed: the seeds are broken"
    );
}
