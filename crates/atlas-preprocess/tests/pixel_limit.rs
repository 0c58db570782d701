//! The process-wide pixel limit (its own test binary: it changes global state).

mod common;

use atlas_preprocess::{MAX_PIXELS, MAX_PIXELS_ENV, decode, max_pixels, set_max_pixels};

#[test]
fn set_limit_then_environment_then_default() {
    let seed = common::png(7, 5, png::ColorType::Rgb, png::BitDepth::Eight);
    // SAFETY: the only test of this binary; no other thread reads the environment.
    unsafe { std::env::remove_var(MAX_PIXELS_ENV) };
    assert_eq!(max_pixels().expect("default"), MAX_PIXELS);
    assert!(decode(&seed).is_ok());

    set_max_pixels(Some(34));
    assert_eq!(max_pixels().expect("set"), 34);
    let e = decode(&seed).expect_err("35 pixels over 34");
    assert!(
        e.to_string()
            .contains("7x5 = 35 pixels exceeds the limit of 34"),
        "{e}"
    );

    set_max_pixels(None);
    unsafe { std::env::set_var(MAX_PIXELS_ENV, "30") };
    assert_eq!(max_pixels().expect("env"), 30);
    assert!(decode(&seed).is_err());
    unsafe { std::env::set_var(MAX_PIXELS_ENV, "lots") };
    let e = decode(&seed).expect_err("bad env");
    assert!(
        e.to_string().contains("ATLAS_MAX_IMAGE_PIXELS=\"lots\""),
        "{e}"
    );
    unsafe { std::env::remove_var(MAX_PIXELS_ENV) };
    assert!(decode(&seed).is_ok());
}
