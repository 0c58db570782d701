//! Run the tower benchmark alone (for `perf record`): `cargo run --example profile_towers -p
//! atlas-models -- [ARCH] [ITERS]`.
fn main() {
    let mut args = std::env::args().skip(1);
    let arch = args.next().unwrap_or_else(|| "ViT-B-32".into());
    let iters = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let opts = atlas_models::BenchOptions {
        arch,
        iters,
        ..Default::default()
    };
    match atlas_models::bench_towers(&opts) {
        Ok(r) => println!("{r:?}"),
        Err(e) => eprintln!("error: {e}"),
    }
}
