//! CPU preparation overlapped with the device: a producer thread decodes and preprocesses the next
//! batches on rayon threads while the caller runs the model on the current one. The queue is
//! bounded, so memory stays flat however large the dataset is.
//!
//! The decode runs on its own rayon pool ([`decode_pool`]), not the global one: the CPU towers'
//! kernels (burn's and `atlas_models::cpu`'s) run on the global pool, and a short tower op must
//! not queue behind a batch of ~4 ms decode tasks. Two pools leave the sharing of cores to the OS
//! (on 2 cores the end-to-end rate is bound by the sum of both anyway: BENCHMARKS.md).

use crossbeam_channel::bounded;
use rayon::prelude::*;

/// The pool that decodes and preprocesses (one thread per core, named `decode-N`); `None` (the
/// global pool is used) if it cannot be built.
pub fn decode_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("decode-{i}"))
            .build()
            .map_err(|e| {
                tracing::warn!("no separate decode pool ({e}); decoding on the global pool")
            })
            .ok()
    })
    .as_ref()
}

/// One prepared batch: for each position in the input, the prepared input or why it failed.
pub struct PreparedBatch<P> {
    /// Index of the first item of this batch in the input slice.
    pub start: usize,
    pub items: Vec<Result<P, String>>,
}

/// Prepare `items` in batches of `batch_size` with `prepare` (in parallel) and hand each batch,
/// in order, to `consume` on the calling thread. `depth` batches are prepared ahead.
/// Stops at the first error returned by `consume`.
pub fn run_overlapped<T, P, E>(
    items: &[T],
    batch_size: usize,
    depth: usize,
    prepare: impl Fn(&T) -> Result<P, String> + Sync,
    mut consume: impl FnMut(PreparedBatch<P>) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    P: Send,
{
    let batch_size = batch_size.max(1);
    let (tx, rx) = bounded::<PreparedBatch<P>>(depth.max(1));
    std::thread::scope(|scope| {
        let prepare = &prepare;
        scope.spawn(move || {
            for (i, chunk) in items.chunks(batch_size).enumerate() {
                let decode = || chunk.par_iter().map(prepare).collect();
                let prepared: Vec<Result<P, String>> = match decode_pool() {
                    Some(pool) => pool.install(decode),
                    None => decode(),
                };
                let batch = PreparedBatch {
                    start: i * batch_size,
                    items: prepared,
                };
                if tx.send(batch).is_err() {
                    // The consumer stopped (an error); stop preparing.
                    return;
                }
            }
        });
        // Own the receiver here and drop it on the way out: a producer blocked on a full queue
        // then sees the disconnect and stops, so the scope can join it.
        let rx = rx;
        let mut result = Ok(());
        for batch in rx.iter() {
            if let Err(e) = consume(batch) {
                result = Err(e);
                break;
            }
        }
        drop(rx);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_arrive_in_order_with_errors_in_place() {
        let items: Vec<i32> = (0..103).collect();
        let mut seen = Vec::new();
        run_overlapped(
            &items,
            10,
            2,
            |&x| {
                if x % 17 == 5 {
                    Err(format!("bad {x}"))
                } else {
                    Ok(x * 2)
                }
            },
            |b| -> Result<(), ()> {
                for (k, r) in b.items.into_iter().enumerate() {
                    seen.push((b.start + k, r));
                }
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen.len(), 103);
        for (i, (idx, r)) in seen.iter().enumerate() {
            assert_eq!(*idx, i);
            match r {
                Ok(v) => assert_eq!(*v, 2 * i as i32),
                Err(e) => assert_eq!(e, &format!("bad {i}")),
            }
        }
    }

    #[test]
    fn consumer_error_stops_the_run() {
        let items: Vec<i32> = (0..1000).collect();
        let mut batches = 0;
        let r = run_overlapped(
            &items,
            10,
            1,
            |&x| Ok::<_, String>(x),
            |_| {
                batches += 1;
                if batches == 3 { Err("stop") } else { Ok(()) }
            },
        );
        assert_eq!(r, Err("stop"));
        assert_eq!(batches, 3);
    }
}
