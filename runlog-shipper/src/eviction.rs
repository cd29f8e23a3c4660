//! Redis that evicts keys (`spec/redis.md`, *Redis configuration*). With `maxmemory` and an
//! `allkeys-*` policy Redis may evict a run's hash, its chunks or a whole job's index, and
//! the shipper would never know: it refuses such a server unless `[runlog-shipper]
//! allow-eviction = true`. A `volatile-*` policy evicts only keys with an expiry, which of
//! runlog's keys are only the stage lists of uploads in flight (an upload whose stage list
//! was evicted fails and is tried again).
//!
//! The policy is read from `INFO memory` (on every master of a cluster): `CONFIG GET` is often
//! disabled or outside the shipper's ACL.

use redis::Value;

use crate::conn::Conn;
use crate::upload::{is_no_perm, UploadError};

/// `maxmemory_policy` of an `INFO memory` reply.
pub fn maxmemory_policy(info: &str) -> Option<&str> {
    info.lines()
        .find_map(|l| l.strip_prefix("maxmemory_policy:"))
        .map(str::trim)
}

/// Whether a `maxmemory-policy` may evict keys without an expiry (runlog's runs).
pub fn evicts_any_key(policy: &str) -> bool {
    policy.starts_with("allkeys-")
}

/// The text of each master's `INFO` reply, with its address on a cluster.
fn replies(v: Value) -> Vec<(Option<String>, String)> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    match v {
        Value::Map(nodes) => nodes
            .iter()
            .filter_map(|(addr, v)| Some((text(addr), text(v)?)))
            .collect(),
        v => text(&v).map(|t| (None, t)).into_iter().collect(),
    }
}

/// Refuse a Redis (each master of a cluster) whose `maxmemory-policy` may evict runlog's runs,
/// unless `allow` (`[runlog-shipper] allow-eviction`), in which case it is only logged. A user
/// that may not run `INFO` is warned about and accepted. `place` names the server.
pub fn check_eviction(conn: &mut Conn, place: &str, allow: bool) -> Result<(), UploadError> {
    let v: Value = match redis::cmd("INFO").arg("memory").query(conn) {
        Ok(v) => v,
        Err(e) if is_no_perm(&e) => {
            log::warn!(
                "the Redis user may not run INFO ({e}): whether Redis at {place} may evict \
                 shipped runs cannot be checked; allow +info (spec/redis.md, \"Least privilege\")"
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    for (addr, info) in replies(v) {
        let Some(policy) = maxmemory_policy(&info).filter(|p| evicts_any_key(p)) else {
            continue;
        };
        if allow {
            let at = addr.map_or_else(|| place.to_owned(), |a| format!("{place} (master {a})"));
            log::warn!(
                "Redis at {at} evicts keys (maxmemory-policy {policy}): it may drop shipped runs \
                 under memory pressure; shipping anyway because [runlog-shipper] allow-eviction \
                 = true (the shipper uploads runs it finds evicted again while the journal \
                 still has them)"
            );
            continue;
        }
        // The caller's message names the place.
        let who = addr.map_or_else(|| "the server".to_owned(), |a| format!("master {a}"));
        return Err(UploadError::Config(format!(
            "{who} evicts keys (maxmemory-policy {policy}): under memory pressure it \
             may drop a shipped run's records or a job's whole index, and runlog would never \
             know; set maxmemory-policy noeviction (or volatile-lru or another volatile-* \
             policy: only runlog's stage lists have an expiry) on it, or use a dedicated \
             instance, or set allow-eviction = true in [runlog-shipper] to ship anyway \
             (spec/redis.md, \"Redis configuration\")"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_read_from_info_memory_and_only_allkeys_evicts_runs() {
        let info =
            "# Memory\r\nused_memory:1024\r\nmaxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\n";
        assert_eq!(maxmemory_policy(info), Some("allkeys-lru"));
        assert_eq!(maxmemory_policy("used_memory:1\r\n"), None);
        for p in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
            assert!(evicts_any_key(p), "{p}");
        }
        for p in [
            "noeviction",
            "volatile-lru",
            "volatile-ttl",
            "volatile-random",
        ] {
            assert!(!evicts_any_key(p), "{p}");
        }
    }

    #[test]
    fn a_cluster_reply_names_each_master() {
        let v = Value::Map(vec![
            (
                Value::BulkString(b"10.0.0.1:7000".to_vec()),
                Value::BulkString(b"maxmemory_policy:noeviction\r\n".to_vec()),
            ),
            (
                Value::BulkString(b"10.0.0.2:7000".to_vec()),
                Value::VerbatimString {
                    format: redis::VerbatimFormat::Text,
                    text: "maxmemory_policy:allkeys-lfu\r\n".into(),
                },
            ),
        ]);
        let r = replies(v);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].0.as_deref(), Some("10.0.0.2:7000"));
        assert_eq!(maxmemory_policy(&r[1].1), Some("allkeys-lfu"));
    }
}
