//! Fuzzes the conditional headers: `If-Match`, `If-Unmodified-Since`, `If-None-Match`,
//! `If-Modified-Since` and `If-Range`, as the evaluator reads them.
//!
//! The input is split at newlines into the five header values, in that order. Properties: no
//! panic; the order of RFC 9110 §13.2.2 holds: a present `If-Match` decides the preconditions
//! alone (the verdict is the same without `If-Unmodified-Since`), a failed precondition is 412
//! whatever the revalidation headers say, and without preconditions the verdict is revalidation's.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use step02_files::http::validators::{
    Conditions, Validators, Verdict, evaluate, if_range_holds, is_not_modified, preconditions_hold,
};

/// The validators of a real file, the fuzzer's own temporary file, made once.
static CURRENT: LazyLock<Validators> = LazyLock::new(|| {
    let file = tempfile::tempfile().expect("a temporary file");
    Validators::of(&file.metadata().expect("its metadata"))
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut values = text
        .split('\n')
        .map(|value| (!value.is_empty()).then_some(value));
    let mut next = || values.next().flatten();
    let conditions = Conditions {
        if_match: next(),
        if_unmodified_since: next(),
        if_none_match: next(),
        if_modified_since: next(),
    };
    let if_range = next();
    let current = *CURRENT;
    let now = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
    let verdict = evaluate(&conditions, &current, now);

    if conditions.if_match.is_some() {
        let without_date = Conditions {
            if_unmodified_since: None,
            ..conditions
        };
        assert_eq!(evaluate(&without_date, &current, now), verdict);
    }
    let holds = preconditions_hold(&conditions, &current);
    assert_eq!(verdict == Verdict::PreconditionFailed, !holds);
    let no_preconditions = Conditions {
        if_match: None,
        if_unmodified_since: None,
        ..conditions
    };
    let revalidation = evaluate(&no_preconditions, &current, now);
    assert_ne!(revalidation, Verdict::PreconditionFailed);
    assert_eq!(
        revalidation == Verdict::NotModified,
        is_not_modified(&conditions, &current, now)
    );
    if holds {
        assert_eq!(verdict, revalidation);
    }
    if let Some(value) = if_range {
        let _ = if_range_holds(value, &current);
    }
});
