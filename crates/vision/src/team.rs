//! A small team of threads that one inference at a time splits its convolutions over.
//!
//! Why not rayon: an inference of the shipped model is ~190 parallel sections of 10–100 µs
//! each (three per 3x3 convolution, one per 1x1), with short serial stretches between
//! them (tract's additions, concatenations, upsampling). A rayon scope costs 4–5 µs per
//! section on this 2-core machine even when its other thread is awake, and ~28 µs once
//! that thread has gone to sleep, which rayon's workers do after ~30 µs without work
//! (`docs/BENCHMARKS.md`, issue 10, session 8; 6–7 and 19–29 µs in a later run). That was
//! most of what two threads lost against the ideal halving.
//!
//! A [`Team`] of `n` threads is the calling thread (the *leader*) plus `n - 1` helpers.
//! While [`Team::run`] runs, the helpers spin on one atomic word, so a section costs a
//! store, a compare-and-swap per item and a wait for the last item: 2–4 µs with 16 items
//! of 1–4 µs, most of it that wait (`section_overhead` in `tests/profile.rs`). Outside
//! `run` they sleep on a condition variable and cost nothing. Items are claimed one at a
//! time from a shared counter, so a thread that is descheduled or slower simply claims
//! fewer.
//!
//! The project's kernels find the team of the inference running on their thread with
//! [`current`]; outside [`Team::run`] (tests, tract's profile tools) there is none and they
//! run on the calling thread.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Rounds a helper spins without work before it starts yielding its core each round
/// (a few microseconds: the gaps between the convolutions of an inference are mostly
/// shorter).
const SPINS_BEFORE_YIELD: u32 = 2000;

/// Most items one section may have (they live in 16 bits of the claim word).
const MAX_ITEMS: usize = u16::MAX as usize;

/// The claim word: the section's number (32 bits), its item count (16) and the next
/// unclaimed item (16). One compare-and-swap both checks that a thread still looks at the
/// section it read and claims an item of it.
fn pack(section: u32, items: usize, next: usize) -> u64 {
    (u64::from(section) << 32) | ((items as u64) << 16) | next as u64
}

fn unpack(word: u64) -> (u32, usize, usize) {
    (
        (word >> 32) as u32,
        ((word >> 16) & 0xffff) as usize,
        (word & 0xffff) as usize,
    )
}

/// One section's work, on the leader's stack while the section runs.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
}

struct Shared {
    /// See [`pack`].
    claim: AtomicU64,
    /// The running section's [`Job`] (a `Job<'_>` whose lifetime the leader guarantees:
    /// it waits for every claimed item before the job goes out of scope).
    job: AtomicPtr<Job<'static>>,
    /// Items of the running section that have finished.
    done: AtomicUsize,
    /// Whether an item of the running section panicked (on a helper).
    panicked: AtomicBool,
    /// Whether helpers should spin (inside [`Team::run`]) rather than sleep.
    active: AtomicBool,
    /// Set once, when the team is dropped.
    shutdown: AtomicBool,
    /// What sleeping helpers wait on: `active || shutdown` is re-checked under it.
    sleep: Mutex<()>,
    wake: Condvar,
    threads: usize,
}

impl Shared {
    /// Claims and runs items of the section in `word` until none is left; whether it ran
    /// any. A claim fails (and nothing runs) once the section has moved on.
    fn work(&self, mut word: u64) -> bool {
        let mut ran = false;
        loop {
            let (section, items, next) = unpack(word);
            if next >= items {
                return ran;
            }
            match self.claim.compare_exchange_weak(
                word,
                pack(section, items, next + 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: the claim succeeded, so the section is still running: its
                    // leader waits for this item's `done` before its job goes out of
                    // scope, and it published the job before the claim word.
                    let job = unsafe { &*self.job.load(Ordering::Acquire) };
                    if catch_unwind(AssertUnwindSafe(|| (job.f)(next))).is_err() {
                        self.panicked.store(true, Ordering::Release);
                    }
                    self.done.fetch_add(1, Ordering::Release);
                    ran = true;
                    word = self.claim.load(Ordering::Acquire);
                }
                Err(now) => word = now,
            }
        }
    }

    fn helper(&self) {
        // A helper only ever runs items: a section started from inside one runs there.
        IN_SECTION.with(|s| s.set(true));
        loop {
            {
                let mut guard = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
                while !self.active.load(Ordering::Acquire) && !self.shutdown.load(Ordering::Acquire)
                {
                    guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
            }
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            // Spin for the next section; after a while without one (the leader in a long
            // serial stretch), also offer the core to any other runnable thread each
            // round: on a machine with more runnable threads than cores (several
            // inferences at once) that is the other inference's time.
            let mut idle = 0u32;
            while self.active.load(Ordering::Acquire) {
                if self.work(self.claim.load(Ordering::Acquire)) {
                    idle = 0;
                } else if idle < SPINS_BEFORE_YIELD {
                    idle += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// A leader (the thread calling [`Team::run`]) and `threads - 1` helper threads.
pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    /// Held by the `run` in progress: one inference at a time.
    running: Mutex<()>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Team({} threads)", self.shared.threads)
    }
}

thread_local! {
    /// The team whose `run` is in progress on this thread.
    static CURRENT: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
    /// Whether this thread is inside a section (a nested section runs on the thread).
    static IN_SECTION: Cell<bool> = const { Cell::new(false) };
}

/// The team of the [`Team::run`] in progress on this thread, if any.
pub fn current() -> Option<TeamRef<'static>> {
    let ptr = CURRENT.with(Cell::get);
    // SAFETY: `run` sets the pointer for its duration only and the `Team` (and so its
    // `Shared`) outlives that call; the returned reference is used within it, by the
    // kernels that the run's closure calls.
    (!ptr.is_null()).then(|| TeamRef {
        shared: unsafe { &*ptr },
    })
}

/// A handle on a team, for the kernels: [`TeamRef::threads`] and [`TeamRef::for_each`].
#[derive(Clone, Copy)]
pub struct TeamRef<'a> {
    shared: &'a Shared,
}

impl std::fmt::Debug for TeamRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TeamRef({} threads)", self.shared.threads)
    }
}

impl TeamRef<'_> {
    pub fn threads(&self) -> usize {
        self.shared.threads
    }

    /// `f(i)` for every `i` in `0..items`, each exactly once, spread over the team;
    /// returns when all have finished. A panic in any item is re-raised here once the
    /// others are done. Called from inside an item, or with more than [`MAX_ITEMS`]
    /// items, it runs them in order on the calling thread.
    pub fn for_each(&self, items: usize, f: &(dyn Fn(usize) + Sync)) {
        let shared = self.shared;
        let nested = IN_SECTION.with(|s| s.replace(true));
        if nested || !(2..=MAX_ITEMS).contains(&items) || shared.threads < 2 {
            let result = catch_unwind(AssertUnwindSafe(|| (0..items).for_each(f)));
            IN_SECTION.with(|s| s.set(nested));
            if let Err(panic) = result {
                resume_unwind(panic);
            }
            return;
        }
        let job = Job { f };
        // SAFETY (of the lifetime cast): see `Shared::job`; this function does not return
        // before `done` counts every item, and no item is claimed after the last.
        let job_ptr = (&job as *const Job<'_>).cast::<Job<'static>>().cast_mut();
        shared.job.store(job_ptr, Ordering::Release);
        shared.done.store(0, Ordering::Release);
        let (section, ..) = unpack(shared.claim.load(Ordering::Acquire));
        let word = pack(section.wrapping_add(1), items, 0);
        shared.claim.store(word, Ordering::Release);
        shared.work(word);
        while shared.done.load(Ordering::Acquire) < items {
            std::hint::spin_loop();
        }
        IN_SECTION.with(|s| s.set(false));
        if shared.panicked.swap(false, Ordering::AcqRel) {
            panic!("a team thread panicked in a parallel section");
        }
    }

    /// `f(range)` over consecutive ranges of `0..total`: about `chunks_per_thread` ranges
    /// per thread (a few each, for balance), all of one length but the last. (Ranges of
    /// lengths differing by one at most were 5% slower on the shipped model at 2 threads,
    /// for reasons not found: `docs/BENCHMARKS.md`.)
    pub fn for_each_range(
        &self,
        total: usize,
        chunks_per_thread: usize,
        f: &(dyn Fn(std::ops::Range<usize>) + Sync),
    ) {
        let chunks = (self.threads() * chunks_per_thread).clamp(1, total.max(1));
        let per = total.div_ceil(chunks).max(1);
        let chunks = total.div_ceil(per).max(1);
        self.for_each(chunks, &|i| f(i * per..((i + 1) * per).min(total)));
    }
}

impl Team {
    /// A team of `threads` (at least 1: the leader alone).
    pub fn new(threads: usize, name: &str) -> std::io::Result<Team> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            claim: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            active: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            threads,
        });
        let mut helpers = Vec::with_capacity(threads - 1);
        for i in 1..threads {
            let mine = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || mine.helper());
            match handle {
                Ok(h) => helpers.push(h),
                Err(e) => {
                    // Let the ones already started go before reporting.
                    drop(Team {
                        shared,
                        helpers,
                        running: Mutex::new(()),
                    });
                    return Err(e);
                }
            }
        }
        Ok(Team {
            shared,
            helpers,
            running: Mutex::new(()),
        })
    }

    pub fn threads(&self) -> usize {
        self.shared.threads
    }

    /// Runs `f` on the calling thread. When the team is free, `f` gets it (`Some`) and its
    /// helpers spin, ready for the sections `f`'s kernels start (they find the team with
    /// [`current`]). When another `run` holds it, or this thread already leads a run, `f`
    /// gets `None` and runs without this team's helpers: two inferences never share a
    /// team.
    pub fn run<R>(&self, f: impl FnOnce(Option<TeamRef<'_>>) -> R) -> R {
        let _running = match self.running.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return f(None),
        };
        if !CURRENT.with(Cell::get).is_null() {
            // Inside another team's run on this thread: its kernels go on finding that
            // team.
            return f(None);
        }
        /// Restores the thread's state and lets the helpers sleep, also on a panic.
        struct Active<'a>(&'a Shared);
        impl Drop for Active<'_> {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(std::ptr::null()));
                let _guard = self.0.sleep.lock().unwrap_or_else(|e| e.into_inner());
                self.0.active.store(false, Ordering::Release);
            }
        }
        {
            let _guard = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.active.store(true, Ordering::Release);
            self.shared.wake.notify_all();
        }
        let _active = Active(&self.shared);
        CURRENT.with(|c| c.set(Arc::as_ptr(&self.shared)));
        f(Some(TeamRef {
            shared: &self.shared,
        }))
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        {
            let _guard = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.shutdown.store(true, Ordering::Release);
            self.shared.active.store(false, Ordering::Release);
            self.shared.wake.notify_all();
        }
        for h in self.helpers.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn counts(team: &Team, items: usize) -> Vec<u32> {
        let seen: Vec<AtomicU32> = (0..items).map(|_| AtomicU32::new(0)).collect();
        team.run(|t| {
            let t = t.expect("team free");
            assert!(current().is_some(), "the kernels find the team");
            t.for_each(items, &|i| {
                seen[i].fetch_add(1, Ordering::Relaxed);
            });
        });
        seen.into_iter().map(AtomicU32::into_inner).collect()
    }

    #[test]
    fn every_item_runs_exactly_once() {
        for threads in [1, 2, 3] {
            let team = Team::new(threads, "test").expect("team");
            for items in [0, 1, 2, 7, 64, 1000, MAX_ITEMS + 3] {
                assert_eq!(
                    counts(&team, items),
                    vec![1; items],
                    "{threads} threads, {items} items"
                );
            }
        }
    }

    #[test]
    fn many_sections_in_a_row_lose_nothing() {
        // Thousands of back-to-back sections: a claim that slipped from one section into
        // the next would run an item twice or skip one, and the sums would differ.
        let team = Team::new(2, "test").expect("team");
        let total = AtomicU64::new(0);
        team.run(|t| {
            let t = t.expect("team free");
            for s in 0..5000u64 {
                let items = 1 + (s % 13) as usize;
                t.for_each(items, &|i| {
                    total.fetch_add(s * 100 + i as u64, Ordering::Relaxed);
                });
            }
        });
        let expected: u64 = (0..5000u64)
            .map(|s| {
                let items = 1 + s % 13;
                (0..items).map(|i| s * 100 + i).sum::<u64>()
            })
            .sum();
        assert_eq!(total.into_inner(), expected);
    }

    #[test]
    fn ranges_cover_the_items_once() {
        let team = Team::new(2, "test").expect("team");
        for (total, per_thread) in [(0, 4), (1, 4), (5, 4), (25, 4), (100, 8), (9, 1)] {
            let lengths = std::sync::Mutex::new(Vec::new());
            let seen: Vec<AtomicU32> = (0..total).map(|_| AtomicU32::new(0)).collect();
            team.run(|t| {
                let t = t.expect("team free");
                t.for_each_range(total, per_thread, &|r| {
                    lengths.lock().expect("lengths").push(r.len());
                    for i in r {
                        seen[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
            });
            let seen: Vec<u32> = seen.into_iter().map(AtomicU32::into_inner).collect();
            assert_eq!(
                seen,
                vec![1; total],
                "{total} items, {per_thread} per thread"
            );
        }
    }

    #[test]
    fn helpers_take_part() {
        // The leader's items wait (up to a deadline far above any scheduling delay) for a
        // helper to run one: a team whose helpers never take part fails, a busy test
        // machine that schedules the helper late does not.
        let team = Team::new(2, "test").expect("team");
        let leader = std::thread::current().id();
        let elsewhere = AtomicUsize::new(0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        team.run(|t| {
            let t = t.expect("team free");
            t.for_each(40, &|_| {
                if std::thread::current().id() != leader {
                    elsewhere.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                while elsewhere.load(Ordering::Relaxed) == 0 && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        });
        assert!(elsewhere.into_inner() > 0);
    }

    #[test]
    fn a_panicking_item_reaches_the_leader_and_the_team_still_works() {
        let team = Team::new(2, "test").expect("team");
        let result = catch_unwind(AssertUnwindSafe(|| {
            team.run(|t| {
                let t = t.expect("team free");
                t.for_each(64, &|i| {
                    if i == 40 {
                        panic!("item 40");
                    }
                })
            })
        }));
        assert!(result.is_err());
        assert!(
            current().is_none(),
            "the run's team is cleared after a panic"
        );
        assert_eq!(counts(&team, 100), vec![1; 100]);
    }

    #[test]
    fn nested_sections_run_on_the_calling_thread() {
        let team = Team::new(2, "test").expect("team");
        let total = AtomicUsize::new(0);
        team.run(|t| {
            let t = t.expect("team free");
            t.for_each(8, &|_| {
                // Helpers have no current team; the leader is inside a section.
                if let Some(inner) = current() {
                    inner.for_each(3, &|_| {
                        total.fetch_add(1, Ordering::Relaxed);
                    });
                } else {
                    total.fetch_add(3, Ordering::Relaxed);
                }
            })
        });
        assert_eq!(total.into_inner(), 24);
    }

    #[test]
    fn one_run_at_a_time_and_none_outside() {
        let team = Team::new(2, "test").expect("team");
        assert!(current().is_none());
        let inner = team.run(|_| team.run(|t| t.is_none()));
        assert!(inner, "a second run while one is in progress gets no team");
        assert!(current().is_none());
    }
}
