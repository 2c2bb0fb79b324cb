//! What a growing descriptor table costs a process with threads (Linux).
//!
//! Two threads open descriptors (duplicates of `/dev/null`, as an event loop accepts connections)
//! until the process holds `N` (default 10,000), timing each `dup`. Every time the table fills
//! (at 64, 128, …, 8,192 descriptors) the kernel doubles it, and with more than one thread it
//! waits for an RCU grace period first, while the other thread's `dup`s wait too. It prints each
//! call slower than a millisecond, with the descriptor count at that moment. With `--grown`, the
//! table is grown to its full size before the threads start, as the servers do at start-up
//! (`step02_files::server::startup::grow_descriptor_table`), and the stalls are gone.
//!
//! ```console
//! $ ulimit -n 20000
//! $ cargo run --release -p step07-epoll --example descriptor-table
//! $ cargo run --release -p step07-epoll --example descriptor-table -- --grown
//! ```

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

const SLOW: Duration = Duration::from_millis(1);

fn main() -> std::io::Result<()> {
    let grown = std::env::args().any(|arg| arg == "--grown");
    let total: usize = std::env::args()
        .filter_map(|arg| arg.parse().ok())
        .next()
        .unwrap_or(10_000);
    let null = File::open("/dev/null")?;
    if grown {
        step02_files::server::startup::grow_descriptor_table(&null);
    }
    let held: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::with_capacity(total));
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| open_until(&null, &held, total));
        }
    });
    let held = held
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    println!(
        "{} descriptors opened by 2 threads in {:?}{}",
        held.len(),
        started.elapsed(),
        if grown { " (table grown first)" } else { "" }
    );
    Ok(())
}

/// Duplicates `null` until `held` has `total` descriptors, printing every slow `dup`.
fn open_until(null: &File, held: &Mutex<Vec<OwnedFd>>, total: usize) {
    loop {
        let before = Instant::now();
        let Ok(fd) = null.try_clone().map(OwnedFd::from) else {
            eprintln!("out of descriptors: raise `ulimit -n`");
            return;
        };
        let took = before.elapsed();
        if took > SLOW {
            println!(
                "dup gave descriptor {:>5} after {took:>9.3?}",
                fd.as_raw_fd()
            );
        }
        let mut held = held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if held.len() >= total {
            return;
        }
        held.push(fd);
    }
}
