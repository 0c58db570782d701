//! The store's writer lock: one holder at a time, a clear error for the others, released on
//! drop and when the holding process dies.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use atlas_store::{LOCK_FILE, Store, StoreError};

/// Set in the child process spawned by the tests below: the store root to lock.
const CHILD_ENV: &str = "ATLAS_STORE_LOCK_TEST_CHILD";

/// The tests of this file run one at a time. A `flock` belongs to the open file description, and
/// a child spawned by one test (fork, then exec) shares the parent's descriptions until its exec
/// closes them: in that window a lock another test just dropped is still held, and that test's
/// next `lock_exclusive` would be refused for a moment.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Not a test on its own: the body of the child process (does nothing unless `CHILD_ENV` is set).
/// Takes the lock, says so on stdout, and holds it until stdin closes.
#[test]
fn child_holds_the_lock() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::open(root).unwrap();
    let lock = store.lock_exclusive().unwrap();
    assert!(lock.is_held());
    let mut out = std::io::stdout();
    writeln!(out, "LOCKED {}", std::process::id()).unwrap();
    out.flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(lock);
}

fn spawn_holder(root: &std::path::Path) -> (std::process::Child, u32) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_holds_the_lock",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid = loop {
        let line = lines
            .next()
            .expect("child ended before taking the lock")
            .unwrap();
        // libtest prints `test child_holds_the_lock ... ` first, on the same line.
        if let Some(i) = line.find("LOCKED ") {
            break line[i + "LOCKED ".len()..].trim().parse::<u32>().unwrap();
        }
    };
    // Keep reading: the child's test harness prints its result when it ends, and a closed pipe
    // would fail it.
    std::thread::spawn(move || lines.for_each(drop));
    (child, pid)
}

fn expect_in_use(store: &Store) -> String {
    match store.lock_exclusive() {
        Err(e @ StoreError::InUse { .. }) => e.to_string(),
        Err(e) => panic!("expected InUse, got {e}"),
        Ok(_) => panic!("a second writer got the lock"),
    }
}

#[test]
fn second_handle_in_one_process_is_refused_until_drop() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path()).unwrap();
    let b = Store::open(dir.path()).unwrap();
    let lock = a.lock_exclusive().unwrap();
    assert!(lock.is_held());
    assert_eq!(lock.path(), dir.path().join(LOCK_FILE));
    let msg = expect_in_use(&b);
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(msg.contains("started at 20"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(
        msg.contains("in use by another clip-atlas run")
            && msg.contains("wait for it or use another store"),
        "{msg}"
    );
    // Same handle, twice: also refused (one writer, whoever asks).
    expect_in_use(&a);
    drop(lock);
    let again = b.lock_exclusive().unwrap();
    assert!(again.is_held());
}

#[test]
fn another_process_is_refused_and_its_exit_releases_the_lock() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    // Holder exits normally (stdin closed).
    let (mut child, pid) = spawn_holder(dir.path());
    let msg = expect_in_use(&store);
    assert!(msg.contains(&format!("pid {pid},")), "{msg}");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    drop(store.lock_exclusive().unwrap());

    // Holder killed (SIGKILL on Unix): the OS drops the lock with the process.
    let (mut child, pid) = spawn_holder(dir.path());
    assert!(expect_in_use(&store).contains(&format!("pid {pid},")));
    child.kill().unwrap();
    child.wait().unwrap();
    let lock = store.lock_exclusive().unwrap();
    assert!(lock.is_held());
}

#[test]
fn workers_share_the_lock_and_exclude_a_plain_run() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let w1 = store.lock_shared().unwrap();
    let w2 = store.lock_shared().unwrap();
    assert!(w1.is_held() && w2.is_held());
    // A worker with a live claim is named in the plain run's refusal.
    let board = store
        .claims("node1-w0", std::time::Duration::from_secs(60))
        .unwrap();
    let _claim = board.try_claim("model-a").unwrap().unwrap();
    let err = store.lock_exclusive().unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("node1-w0"), "{err}");
    drop((w1, w2));
    let plain = store.lock_exclusive().unwrap();
    let err = store.lock_shared().unwrap_err();
    assert!(err.to_string().contains("single-process run"), "{err}");
    drop(plain);
}
