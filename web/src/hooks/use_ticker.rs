//! `use_ticker`: a counter that goes up every `period_ms`, for pages that poll the API.
//!
//! The count lives in the timer's own cell: a `UseStateHandle` captured by the timer
//! closure keeps the value of the render that created it, so `tick.set(*tick + 1)` there
//! would set the same number forever and the page would poll only once.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Interval;
use yew::prelude::*;

/// A number that changes every `period_ms` milliseconds while the component is mounted.
#[hook]
pub fn use_ticker(period_ms: u32) -> u32 {
    let tick = use_state(|| 0u32);
    {
        let tick = tick.clone();
        use_effect_with(period_ms, move |period| {
            let count = Rc::new(Cell::new(0u32));
            let interval = Interval::new(*period, move || {
                count.set(count.get().wrapping_add(1));
                tick.set(count.get());
            });
            move || drop(interval)
        });
    }
    *tick
}
