use burn::tensor::{DType, Distribution, Tensor, TensorData};
use std::time::Instant;
fn main() {
    let dev = burn::tensor::Device::flex();
    let n = 10;
    let x: Tensor<3> = Tensor::random([32, 50, 3072], Distribution::Normal(0.0, 1.0), &dev);
    let t0 = Instant::now();
    let mut y = x;
    for _ in 0..n {
        y = y + 1.0;
    }
    println!(
        "add scalar (fresh tensor each): {:.2} ms",
        t0.elapsed().as_secs_f64() * 1e3 / n as f64
    );
    let t0 = Instant::now();
    let mut datas = Vec::new();
    for _ in 0..n {
        let z = y.clone() + 1.0;
        let t1 = Instant::now();
        let d = z.into_data();
        datas.push((d, t1.elapsed()));
    }
    println!(
        "into_data of unique: {:?}",
        datas.iter().map(|d| d.1).collect::<Vec<_>>()
    );
    let _ = t0;
    let mut outs = Vec::new();
    for (d, _) in datas {
        let t1 = Instant::now();
        let d = d.convert_dtype(DType::F32);
        let t2 = t1.elapsed();
        let v = d.try_into_vec::<f32>().ok().unwrap();
        let t3 = t1.elapsed();
        let td = TensorData::new(v, [32, 50, 3072]);
        let t: Tensor<3> = Tensor::from_data(td, &dev);
        outs.push((t2, t3, t1.elapsed()));
        std::hint::black_box(t);
    }
    println!("convert / into_vec / from_data: {outs:?}");
    let d = y.device();
    println!(
        "dispatch {:?} autodiff {} dtype {:?}",
        d.as_dispatch(),
        d.is_autodiff(),
        y.dtype()
    );
    for _ in 0..3 {
        let z = y.clone() + 1.0;
        let t1 = Instant::now();
        let g = atlas_models::cpu::activation(atlas_models::activation::Activation::Gelu, z);
        println!("cpu gelu on unique {:?}", t1.elapsed());
        std::hint::black_box(g);
    }
}
#[allow(dead_code)]
fn unused() {}
