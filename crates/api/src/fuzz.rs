//! Fuzzing of what a client sends (proptest): request bodies for create, exec, update and
//! commit, query strings and filters. No input may panic; every refusal is an error value
//! the API turns into a 4xx. What the engine does with a parsed request (its checks, the OCI
//! spec builder, the small parsers) is fuzzed in berth-daemon with the same strategies.

use berth_daemon::testing::arbitrary::{body, json};
use proptest::prelude::*;

use crate::query::Query;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn create_bodies_never_panic(b in body()) {
        let _ = crate::body::create(&b);
    }

    #[test]
    fn exec_update_and_commit_bodies_never_panic(b in body()) {
        let _ = crate::body::exec(&b);
        let _ = crate::body::exec_start(&b);
        let _ = crate::body::update(&b);
        let _ = crate::body::commit(&b);
    }

    #[test]
    fn queries_and_filters_never_panic(q in "\\PC{0,64}", f in json()) {
        if let Ok(parsed) = Query::parse(&q) {
            let _ = parsed.filters();
            let _ = parsed.resize_dims();
            let _ = parsed.bool("all");
        }
        let encoded = serde_urlencoded::to_string([("filters", f.to_string())]).unwrap_or_default();
        if let Ok(parsed) = Query::parse(&encoded) {
            let _ = parsed.filters();
        }
    }

    #[test]
    fn query_times_never_panic(s in "\\PC{0,40}") {
        let encoded = serde_urlencoded::to_string([("since", &s), ("t", &s)]).unwrap_or_default();
        if let Ok(q) = Query::parse(&encoded) {
            let _ = q.time("since");
            let _ = q.event_time("since");
            let _ = q.timeout();
        }
    }
}
