//! The endpoint client against a real OpenAI-compatible server: `tools/lmm/serve_openai.py`
//! serving atlas-llava's tiny fixture model with an independent NumPy LLaVA-1.5 (checked
//! against transformers by `tools/lmm/check_numpy_llava.py`), started here on a free port.
//!
//! Needs `python3` (or `$PYTHON`) with NumPy and Pillow (`pip install -r
//! tools/requirements-test.txt`); the tests fail, not skip, without them.

use std::io::{BufRead, BufReader, Cursor};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use atlas_llava::{GenerateOptions, LoadOptions, LoadedLlava, Sampling as LocalSampling};
use atlas_lmm_endpoint::{
    ChatItem, EndpointClient, EndpointConfig, GenerationParams, ItemError, Sampling,
};

const MAX_TOKENS: u32 = 16;
const QUESTIONS: [&str; 2] = [
    "What is the main object in this image? Choose from the following list: dog, cat.",
    "Describe the picture briefly.",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture_model() -> PathBuf {
    root().join("crates/atlas-llava/tests/fixtures/model")
}

/// The server process; killed (by its own handle) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Fail (not skip) with what to install when python3, NumPy or Pillow is missing.
fn require_python() {
    let py = python();
    match Command::new(&py).args(["-c", "import numpy, PIL"]).output() {
        Err(e) => panic!(
            "cannot run {py:?} ({e}): this test needs python3 with numpy and pillow \
             (pip install -r tools/requirements-test.txt; set $PYTHON to use another interpreter)"
        ),
        Ok(o) if !o.status.success() => panic!(
            "{py} cannot import numpy and PIL: {}\ninstall them: pip install -r \
             tools/requirements-test.txt",
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => {}
    }
}

fn start_server(extra: &[&str]) -> Server {
    require_python();
    let script = root().join("tools/lmm/serve_openai.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg("--model")
        .arg(fixture_model())
        .args(["--model-id", "tiny-llava", "--port", "0"])
        .args(extra)
        // One BLAS thread: the server runs requests in threads on a small machine.
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .env("MKL_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let status = child.wait();
            panic!("serve_openai.py did not report its address within 60 s (exit: {status:?})");
        }
    };
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"))
        .to_string();
    Server { child, url }
}

fn model() -> &'static LoadedLlava {
    static M: OnceLock<LoadedLlava> = OnceLock::new();
    M.get_or_init(|| atlas_llava::load(&fixture_model(), &LoadOptions::default()).unwrap())
}

/// The in-process atlas-llava greedy answer: (text, new token ids, prompt token ids).
fn local_answer(question: &str, image: &[u8]) -> (String, Vec<u32>, Vec<u32>) {
    let m = model();
    let tok = m.tokenizer.as_ref().unwrap();
    let prompt = atlas_llava::llava_v1_prompt(question, true);
    let ids = tok.encode(&prompt).unwrap();
    let pixels = m.pixels(image).unwrap();
    let opts = GenerateOptions {
        max_new_tokens: MAX_TOKENS as usize,
        sampling: LocalSampling::Greedy,
        eos_token_id: m.config.text.eos_token_id,
    };
    let new = m.model.generate(&ids, Some((&pixels, 1)), &opts).unwrap();
    (tok.decode(&new, true).unwrap(), new, ids)
}

fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = x.wrapping_mul(31 + seed) ^ y.wrapping_mul(17 + 3 * seed);
        image::Rgb([(v % 251) as u8, (x * 255 / w) as u8, (y * 255 / h) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The fixture's image and two generated ones (other sizes and aspect ratios).
fn images() -> Vec<Vec<u8>> {
    let fixture = root().join("crates/atlas-llava/tests/fixtures/image.png");
    vec![
        std::fs::read(fixture).unwrap(),
        png(64, 64, 1),
        png(57, 30, 2),
    ]
}

fn config(url: &str) -> EndpointConfig {
    let mut c = EndpointConfig::new(url, "tiny-llava");
    c.concurrency = 3;
    c.max_retries = 2;
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.timeout = Duration::from_secs(30);
    c
}

fn greedy() -> GenerationParams {
    GenerationParams {
        max_tokens: MAX_TOKENS,
        sampling: Sampling::Greedy,
    }
}

fn stats(url: &str) -> serde_json::Value {
    let agent = ureq::Agent::new_with_config(ureq::Agent::config_builder().proxy(None).build());
    let mut r = agent.get(format!("{url}/stats")).call().unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn greedy_answers_equal_the_in_process_model() {
    let server = start_server(&[]);
    let imgs = images();
    let mut items = Vec::new();
    for img in &imgs {
        for q in QUESTIONS {
            items.push(ChatItem::with_image(q, img.clone()));
        }
    }
    let mut cfg = config(&server.url);
    cfg.request_token_ids = true;
    let client = EndpointClient::new(cfg, greedy()).unwrap();
    let answers = client.ask_all(&items);
    assert_eq!(answers.len(), items.len());
    for (item, got) in items.iter().zip(&answers) {
        let got = got
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", item.text));
        let (text, new, prompt) = local_answer(&item.text, &item.images[0]);
        println!("{:?} -> {:?} {new:?}", item.text, got.text);
        // Token for token, the prompt (template + tokenizer + image tokens) and the answer.
        assert_eq!(got.prompt_token_ids.as_ref(), Some(&prompt), "prompt ids");
        assert_eq!(
            got.token_ids.as_ref(),
            Some(&new),
            "answer ids to {:?}",
            item.text
        );
        assert_eq!(got.text, text, "answer to {:?}", item.text);
        assert_eq!(got.completion_tokens, Some(new.len() as u64));
        assert_eq!(got.prompt_tokens, Some(prompt.len() as u64));
        assert_eq!(got.attempts, 1);
        assert_eq!(got.model.as_deref(), Some("tiny-llava"));
    }
    let s = stats(&server.url);
    assert!(s["max_in_flight"].as_u64().unwrap() <= 3, "{s}");

    // Seeded sampling: the same seed gives the same answer.
    let seeded = |seed| GenerationParams {
        max_tokens: MAX_TOKENS,
        sampling: Sampling::Seeded {
            temperature: 1.0,
            top_p: None,
            seed,
        },
    };
    let item = [items[0].clone()];
    let ask = |seed| {
        let c = EndpointClient::new(config(&server.url), seeded(seed)).unwrap();
        c.ask_all(&item).remove(0).unwrap().text
    };
    assert_eq!(ask(7), ask(7));
}

#[test]
fn faults_are_recorded_per_item_and_the_batch_goes_on() {
    let server = start_server(&["--fault-triggers", "--slow-seconds", "8"]);
    let imgs = images();
    let q = |fault: &str, i: usize| format!("{fault}{}", QUESTIONS[i]);
    let items = vec![
        ChatItem::with_image(q("[[fault:slow]]", 0), imgs[0].clone()),
        ChatItem::with_image(q("", 0), imgs[0].clone()),
        ChatItem::with_image(q("[[fault:500]]", 0), imgs[0].clone()),
        ChatItem::with_image(q("[[fault:malformed]]", 0), imgs[0].clone()),
        ChatItem::with_image(q("[[fault:noimages]]", 0), imgs[0].clone()),
        ChatItem::with_image(q("[[fault:nochoices]]", 0), imgs[0].clone()),
        ChatItem::with_image(q("[[fault:503x2]]", 1), imgs[1].clone()),
        ChatItem::with_image(q("[[fault:429x1]]", 1), imgs[2].clone()),
        ChatItem::with_image(q("[[fault:drop]]", 1), imgs[2].clone()),
        ChatItem::with_image(q("", 1), imgs[2].clone()),
        ChatItem::with_image(q("", 1), b"BM not an image".to_vec()),
    ];
    let mut cfg = config(&server.url);
    cfg.timeout = Duration::from_secs(4);
    let client = EndpointClient::new(cfg, greedy()).unwrap();
    let start = Instant::now();
    let results = client.ask_all(&items);
    println!(
        "{} items in {:.1} s",
        items.len(),
        start.elapsed().as_secs_f64()
    );
    for (item, r) in items.iter().zip(&results) {
        match r {
            Ok(a) => println!(
                "ok  {:?}: {:?} ({} attempts)",
                item.text, a.text, a.attempts
            ),
            Err(e) => println!("err {:?}: [{}] {e}", item.text, e.kind()),
        }
    }
    let err = |i: usize| -> &ItemError {
        results[i]
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("item {i} should have failed"))
    };
    let url = format!("{}/v1/chat/completions", server.url);
    assert!(
        matches!(err(0), ItemError::Timeout { .. }),
        "timeout: {}",
        err(0)
    );
    assert!(err(0).to_string().contains("per-request timeout"));
    match err(2) {
        ItemError::Server {
            status, attempts, ..
        } => assert_eq!((*status, *attempts), (500, 3)),
        e => panic!("500: {e}"),
    }
    assert!(err(2).to_string().contains("HTTP 500"), "{}", err(2));
    assert!(err(2).to_string().contains(&url), "{}", err(2));
    assert!(matches!(err(3), ItemError::Malformed { .. }), "{}", err(3));
    assert!(err(3).to_string().contains("not JSON"), "{}", err(3));
    match err(4) {
        ItemError::ImagesRefused {
            status, message, ..
        } => {
            assert_eq!(*status, 400);
            assert!(
                message.contains("image input is not supported"),
                "{message}"
            );
        }
        e => panic!("refused images: {e}"),
    }
    assert!(err(5).to_string().contains("choices[0]"), "{}", err(5));
    assert!(
        matches!(err(8), ItemError::Connection { attempts: 3, .. }),
        "{}",
        err(8)
    );
    assert!(matches!(err(10), ItemError::Input(_)), "{}", err(10));

    // The other items are answered, the same as in process; retried ones after their faults.
    for (i, attempts) in [(1, 1), (6, 3), (7, 2), (9, 1)] {
        let a = results[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("item {i}: {e}"));
        let clean = items[i].text.split("]]").last().unwrap_or_default();
        let (text, _, _) = local_answer(clean, &items[i].images[0]);
        assert_eq!(a.text, text, "item {i}");
        assert_eq!(a.attempts, attempts, "item {i}");
    }
    let s = stats(&server.url);
    let max = s["max_in_flight"].as_u64().unwrap();
    assert!(
        (2..=3).contains(&max),
        "max in flight {max} (concurrency 3): {s}"
    );
}

#[test]
fn server_down_is_a_clear_error_for_every_item() {
    // A port with nothing listening.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let client = EndpointClient::new(config(&url), greedy()).unwrap();
    let items: Vec<ChatItem> = images()
        .into_iter()
        .map(|img| ChatItem::with_image(QUESTIONS[0], img))
        .collect();
    let results = client.ask_all(&items);
    for r in &results {
        let e = r.as_ref().unwrap_err();
        let msg = e.to_string();
        println!("{msg}");
        assert!(
            matches!(e, ItemError::Unreachable { attempts: 3, .. }),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("could not connect to {url}/v1/chat/completions"))
                && msg.contains("is the server running?"),
            "{msg}"
        );
    }
}
