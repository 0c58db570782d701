//! Per-stage cost of generating images (single thread): `bench_parts` (spec, render, PNG,
//! occlusion measurement) or `bench_parts breakdown` (render cost per pattern/background/style).
use std::time::Instant;

use atlas_world::{Split, WorldConfig, encode_png, hidden_fraction, render, sample_spec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("breakdown") {
        return breakdown();
    }
    let cfg = WorldConfig::default();
    let n = 500;
    let t = Instant::now();
    let specs: Vec<_> = (0..n).map(|i| sample_spec(Split::Train, i, &cfg)).collect();
    let t_spec = t.elapsed();
    let t = Instant::now();
    let imgs: Vec<_> = specs.iter().map(render).collect::<Result<_, _>>()?;
    let t_render = t.elapsed();
    let t = Instant::now();
    for im in &imgs {
        encode_png(im)?;
    }
    let t_png = t.elapsed();
    let t = Instant::now();
    for s in &specs {
        hidden_fraction(s)?;
    }
    let t_hidden = t.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e3 / n as f64;
    println!(
        "per image ms: spec {:.3} render {:.3} png {:.3} hidden {:.3}",
        per(t_spec),
        per(t_render),
        per(t_png),
        per(t_hidden)
    );
    Ok(())
}

fn breakdown() -> Result<(), Box<dyn std::error::Error>> {
    use atlas_world::{Background, Pattern, Shape, Style, prototype};
    let n = 200;
    for p in Pattern::ALL {
        let mut s = prototype(Shape::Square, Split::Factors, 0, 64);
        s.pattern = p;
        s.objects[0].scale = 0.6;
        let t = Instant::now();
        for _ in 0..n {
            render(&s)?;
        }
        println!(
            "pattern {:12} {:.3} ms",
            p.name(),
            t.elapsed().as_secs_f64() * 1e3 / n as f64
        );
    }
    for b in Background::ALL {
        let mut s = prototype(Shape::Square, Split::Factors, 0, 64);
        s.background = b;
        let t = Instant::now();
        for _ in 0..n {
            render(&s)?;
        }
        println!(
            "background {:10} {:.3} ms",
            b.name(),
            t.elapsed().as_secs_f64() * 1e3 / n as f64
        );
    }
    for st in [Style::Outline, Style::Sketch] {
        let mut s = prototype(Shape::Heart, Split::Factors, 0, 64);
        s.style = st;
        let t = Instant::now();
        for _ in 0..n {
            render(&s)?;
        }
        println!(
            "style {:10} {:.3} ms",
            st.name(),
            t.elapsed().as_secs_f64() * 1e3 / n as f64
        );
    }
    Ok(())
}
