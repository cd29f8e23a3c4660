//! The original Python runlog's `.runlog.conf`: an INI file as Python's `configparser` read it,
//! mapped onto the same raw tables as a TOML file so that every value goes through the same
//! checks.
//!
//! What is kept from `configparser`: `=` or `:` between key and value, whole-line comments
//! starting with `;` or `#` (no inline comments: a password may hold either), keys in any case,
//! indented continuation lines, and the `%%` escape of the original's `SafeConfigParser`.
//! What is added: `-` and `_` are the same in a key (the original's README wrote `max-logs`,
//! its own `.runlog.conf` `max_logs`), and an unknown section or key is an error naming it.

use std::collections::HashMap;
use std::path::Path;

use configparser::ini::Ini;

use super::{ConfigError, RawFile};

/// The section name `configparser` gives keys written before any `[section]` header; a NUL
/// cannot be in a header line of a UTF-8 text file anyone writes.
const TOP: &str = "\u{0}top";

/// How a key's value becomes a TOML value.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
}

/// The keys of each section, kebab-case; `_` may stand for `-`.
const RUNLOG_KEYS: &[(&str, Kind)] = &[
    ("max-logs", Kind::Int),
    ("max-failed-logs", Kind::Int),
    ("journal-dir", Kind::Str),
    ("journal-group", Kind::Str),
    ("fsync", Kind::Str),
    ("level", Kind::Str),
    ("filters", Kind::Str),
    ("segment-size", Kind::Int),
];
const REDIS_KEYS: &[(&str, Kind)] = &[
    ("host", Kind::Str),
    ("port", Kind::Int),
    ("db", Kind::Int),
    ("username", Kind::Str),
    ("password", Kind::Str),
    ("ssl", Kind::Bool),
    ("url", Kind::Str),
    ("prefix", Kind::Str),
    ("tls-ca-file", Kind::Str),
    ("tls-cert-file", Kind::Str),
    ("tls-key-file", Kind::Str),
    ("connect-timeout", Kind::Str),
    ("io-timeout", Kind::Str),
];
/// redis-py's names for the TLS files, as the original passed them to `StrictRedis`.
const REDIS_ALIASES: &[(&str, &str)] = &[
    ("ssl-ca-certs", "tls-ca-file"),
    ("ssl-certfile", "tls-cert-file"),
    ("ssl-keyfile", "tls-key-file"),
];
const SHIPPER_KEYS: &[(&str, Kind)] = &[
    ("disk-budget", Kind::Str),
    ("rescan-interval", Kind::Str),
    ("pipeline-size", Kind::Str),
    ("min-replicas-acked", Kind::Int),
    ("allow-eviction", Kind::Bool),
];
const SECTIONS: [&str; 3] = ["runlog", "runlog-redis", "runlog-shipper"];

/// Whether `path` is read as INI: its name ends in `.conf` or `.ini`.
pub(super) fn is_ini(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("conf") || e.eq_ignore_ascii_case("ini"))
}

/// Parse an INI config file's text into the raw tables; `path` is only used in messages.
pub(super) fn parse(text: &str, path: &Path) -> Result<RawFile, ConfigError> {
    let parse_err = |message: String| ConfigError::Parse {
        path: path.to_owned(),
        message,
    };
    let mut defaults = Ini::new_cs().defaults();
    defaults.default_section = TOP.to_owned();
    defaults.enable_inline_comments = false;
    defaults.multiline = true;
    defaults.comment_symbols = vec![';', '#'];
    defaults.delimiters = vec!['=', ':'];
    let mut ini = Ini::new_from_defaults(defaults);
    let sections = ini.read(text.to_owned()).map_err(|e| {
        parse_err(format!(
            "{e} (an INI file: `[section]` lines, then `key = value` or `key: value`)"
        ))
    })?;
    let mut names: Vec<&String> = sections.keys().collect();
    names.sort();
    let mut root = toml::Table::new();
    for name in names {
        let Some(keys) = sections.get(name) else {
            continue;
        };
        let known = match name.as_str() {
            TOP if keys.is_empty() => continue,
            TOP => {
                let mut ks: Vec<&String> = keys.keys().collect();
                ks.sort();
                return Err(parse_err(format!(
                    "key `{}` stands before any section; put it under [runlog], [runlog-redis] \
                     or [runlog-shipper]",
                    super::clip(ks.first().map_or("", |k| k.as_str()))
                )));
            }
            "runlog" => RUNLOG_KEYS,
            "runlog-redis" => REDIS_KEYS,
            "runlog-shipper" => SHIPPER_KEYS,
            other => {
                return Err(parse_err(format!(
                    "unknown section `[{}]`; expected {}; fix its spelling or remove it \
                     (spec/config.md lists every key)",
                    super::clip(other),
                    SECTIONS.map(|s| format!("`[{s}]`")).join(", ")
                )))
            }
        };
        root.insert(
            name.clone(),
            toml::Value::Table(section(name, keys, known, path)?),
        );
    }
    if let Some(toml::Value::Table(redis)) = root.get_mut("runlog-redis") {
        tls_url(redis, path)?;
    }
    toml::Value::Table(root)
        .try_into::<RawFile>()
        .map_err(|e| parse_err(e.message().trim().to_owned()))
}

/// One section's keys as a TOML table with canonical (kebab-case) keys.
fn section(
    name: &str,
    keys: &HashMap<String, Option<String>>,
    known: &[(&str, Kind)],
    path: &Path,
) -> Result<toml::Table, ConfigError> {
    let mut written: Vec<(&String, &Option<String>)> = keys.iter().collect();
    written.sort();
    let mut table = toml::Table::new();
    for (key, value) in written {
        let mut canonical = key.to_lowercase().replace('_', "-");
        if name == "runlog-redis" {
            if let Some((_, to)) = REDIS_ALIASES.iter().find(|(from, _)| *from == canonical) {
                canonical = (*to).to_owned();
            }
        }
        let Some((_, kind)) = known.iter().find(|(k, _)| *k == canonical) else {
            let mut expected: Vec<String> = known.iter().map(|(k, _)| format!("`{k}`")).collect();
            if name == "runlog-redis" {
                expected.extend(REDIS_ALIASES.iter().map(|(k, _)| format!("`{k}`")));
            }
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                message: format!(
                    "unknown key `{}` in [{name}]; expected one of {} (`_` may stand for `-`); \
                     fix its spelling or remove it (spec/config.md lists every key)",
                    super::clip(key),
                    expected.join(", ")
                ),
            });
        };
        let bad = |value: &str, reason: String| ConfigError::InvalidKey {
            path: path.to_owned(),
            key: format!("{name}.{key}"),
            value: if canonical == "password" {
                "***".to_owned()
            } else {
                format!("{value:?}")
            },
            reason,
        };
        let Some(raw) = value else {
            return Err(bad(
                "",
                "the key has no value; write `key = value` or `key: value`".to_owned(),
            ));
        };
        let text = unescape(raw).map_err(|reason| bad(raw, reason))?;
        let v = match kind {
            Kind::Str => toml::Value::String(text),
            Kind::Int => toml::Value::Integer(
                text.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad(&text, "expected a whole number, 0 or more".to_owned()))?,
            ),
            Kind::Bool => toml::Value::Boolean(boolean(&text).ok_or_else(|| {
                bad(
                    &text,
                    "expected true or false (also yes/no, on/off, 1/0, as configparser read them)"
                        .to_owned(),
                )
            })?),
        };
        if table.insert(canonical.clone(), v).is_some() {
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                message: format!(
                    "key `{canonical}` is set twice in [{name}] (as `-` and as `_`?); keep one"
                ),
            });
        }
    }
    Ok(table)
}

/// Python's `configparser` booleans.
fn boolean(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// The original read its file with `SafeConfigParser`, where `%%` is a `%` and `%(name)s`
/// refers to another key; a lone `%` was an error there and stays one.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest[i + 1..].chars().next() {
            Some('%') => out.push('%'),
            Some('(') => {
                return Err(
                    "`%(name)s` interpolation is not supported; write the value itself".to_owned(),
                )
            }
            _ => return Err("write a `%` as `%%` (as Python's configparser required)".to_owned()),
        }
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `ssl = true` (redis-py's TLS switch): the separate connection fields become a `rediss://`
/// URL, since only a URL says TLS (spec/config.md, `[runlog-redis]`).
fn tls_url(redis: &mut toml::Table, path: &Path) -> Result<(), ConfigError> {
    let Some(toml::Value::Boolean(ssl)) = redis.remove("ssl") else {
        return Ok(());
    };
    if !ssl {
        return Ok(());
    }
    if redis.contains_key("url") {
        return Err(ConfigError::InvalidKey {
            path: path.to_owned(),
            key: "runlog-redis.ssl".to_owned(),
            value: "true".to_owned(),
            reason: "`ssl` and `url` are both set; write a `rediss://` url, or host/port/db \
                     with `ssl`"
                .to_owned(),
        });
    }
    let take = |redis: &mut toml::Table, key: &str| match redis.remove(key) {
        Some(toml::Value::String(s)) => Some(s),
        Some(toml::Value::Integer(n)) => Some(n.to_string()),
        _ => None,
    };
    let host = take(redis, "host").unwrap_or_else(|| "127.0.0.1".to_owned());
    if host.trim().is_empty() {
        return Err(ConfigError::InvalidKey {
            path: path.to_owned(),
            key: "runlog-redis.host".to_owned(),
            value: format!("{host:?}"),
            reason: "expected a host name or address".to_owned(),
        });
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let port = take(redis, "port").unwrap_or_else(|| "6379".to_owned());
    let db = take(redis, "db").unwrap_or_else(|| "0".to_owned());
    let auth = match (take(redis, "username"), take(redis, "password")) {
        (Some(u), Some(p)) => format!("{}:{}@", encode(&u), encode(&p)),
        (Some(u), None) => format!("{}@", encode(&u)),
        (None, Some(p)) => format!(":{}@", encode(&p)),
        (None, None) => String::new(),
    };
    redis.insert(
        "url".to_owned(),
        toml::Value::String(format!("rediss://{auth}{host}:{port}/{db}")),
    );
    Ok(())
}

/// Percent-encode URL user info: everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_follow_safeconfigparser() {
        assert_eq!(unescape("a%%b").as_deref(), Ok("a%b"));
        assert!(unescape("a%b").is_err());
        assert!(unescape("%(home)s/x").is_err());
        assert!(unescape("50%").is_err());
        assert_eq!(unescape("plain").as_deref(), Ok("plain"));
    }

    fn load(text: &str) -> Result<crate::Config, ConfigError> {
        crate::Config::from_toml_str(text, Path::new("/seed/.runlog.conf"))
    }

    #[test]
    fn the_originals_keys_map_onto_the_resolved_config() {
        let c = load(
            "[runlog]\nMax_Logs: 4\nmax-failed-logs = 7\n[runlog-redis]\nhost: h\nport: 7000\n\
             db: 2\nusername: u\npassword: p;#%%\n",
        )
        .unwrap();
        assert_eq!((c.max_logs, c.max_failed_logs), (4, 7));
        let r = c.redis.unwrap();
        assert_eq!(
            (r.host.as_deref(), r.port, r.db, r.url),
            (Some("h"), Some(7000), Some(2), None)
        );
        assert_eq!(r.password.as_deref(), Some("p;#%"));
    }

    #[test]
    fn ssl_makes_a_rediss_url_of_the_connection_fields() {
        let c = load("[runlog-redis]\nhost: h\npassword: a@b\nssl: yes\nssl_ca_certs: ca.pem\n")
            .unwrap();
        let r = c.redis.unwrap();
        assert_eq!(r.url.as_deref(), Some("rediss://:a%40b@h:6379/0"));
        assert_eq!(r.host, None);
        assert_eq!(r.tls_ca_file.as_deref(), Some(Path::new("/seed/ca.pem")));
        let e = load("[runlog-redis]\nurl: redis://h\nssl: on\n").unwrap_err();
        assert!(e.to_string().contains("`ssl` and `url`"), "{e}");
        assert_eq!(
            load("[runlog-redis]\nssl: off\n")
                .unwrap()
                .redis
                .unwrap()
                .url,
            None
        );
    }

    #[test]
    fn unknown_keys_sections_and_values_are_errors_naming_them() {
        for (text, want) in [
            (
                "[runlog]\nmax_log: 1\n",
                "unknown key `max_log` in [runlog]",
            ),
            ("[runlog]\nmax_log: 1\n", "`max-failed-logs`"),
            ("[redis]\nhost: h\n", "unknown section `[redis]`"),
            ("max_logs: 1\n", "before any section"),
            ("[runlog]\nmax_logs\n", "has no value"),
            ("[runlog]\nmax_logs: ten\n", "whole number"),
            ("[runlog]\nmax_logs: 1\nmax-logs: 2\n", "set twice"),
            ("[runlog-redis]\nssl: maybe\n", "true or false"),
            ("[runlog-redis]\npassword: 100%\n", "`%%`"),
            ("[runlog]\nlevel: loud\n", "runlog.level"),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.contains("/seed/.runlog.conf"), "{e}");
        }
        // A password is never echoed.
        let e = load("[runlog-redis]\npassword: 100%\n")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("100"), "{e}");
    }

    #[test]
    fn user_info_is_percent_encoded() {
        assert_eq!(encode("p@ss:w/rd#1"), "p%40ss%3Aw%2Frd%231");
        assert_eq!(encode("a-b.c_d~e"), "a-b.c_d~e");
    }
}
