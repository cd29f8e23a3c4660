//! What a refused connection or command says about the setup, in words an operator can act on.
//!
//! The `redis` crate reports a server that wants a password, a wrong password, an ACL user
//! without a permission, a TLS server spoken to in plain text (or the reverse), something that
//! is not Redis on the port, a Redis too old for the schema, and a replica that refuses writes
//! as a handful of generic errors (a reply code, a parse error, a dropped connection). Taken
//! literally they mislead: a `NOAUTH` reply to the schema key read looks like foreign data.
//! [`diagnose`] turns each into one line naming the server and the fix; where the error alone
//! cannot tell (a dropped connection, a reply that is not the Redis protocol), one short probe
//! of the port settles it. The shipper and the CLI say the same.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError};
use runlog::RedisConfig;

use crate::upload::connection_url;

/// The oldest Redis the schema works with (`spec/redis.md`: `ZADD GT`, `ZRANGE .. REV`).
pub const MIN_VERSION: (u32, u32) = (6, 2);

/// Who is connecting: their ACL rules differ (`spec/redis.md`, "Least privilege").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `runlog-shipper`: writes.
    Shipper,
    /// The `runlog` CLI: reads.
    Reader,
}

impl Role {
    fn rules(self) -> &'static str {
        match self {
            Role::Shipper => "shipper's",
            Role::Reader => "reader's",
        }
    }
}

/// The reply codes [`diagnose`] knows, as found in `e` (also inside a pipeline's error, whose
/// `code()` the client does not give).
pub fn reply_code(e: &RedisError) -> Option<&'static str> {
    const CODES: [&str; 4] = ["NOAUTH", "WRONGPASS", "NOPERM", "READONLY"];
    if let Some(c) = e.code() {
        return CODES.into_iter().find(|k| *k == c);
    }
    let text = e.to_string();
    CODES.into_iter().find(|k| text.contains(k))
}

/// The ACL user of the table, for messages.
fn user(c: &RedisConfig) -> String {
    let in_url = c.url.as_deref().and_then(|u| {
        let rest = u.split_once("://")?.1;
        let (info, _) = rest.split_once('@')?;
        let name = info.split(':').next().unwrap_or_default();
        (!name.is_empty() && !info.contains('/')).then(|| name.to_owned())
    });
    match c.username.clone().or(in_url) {
        Some(u) => format!("user {u:?}"),
        None => "the default user".to_owned(),
    }
}

/// One line naming the server at `place` (as [`crate::upload::describe`] gives it), what is
/// wrong and the fix, for an error that has a known cause; `None` for any other error (the
/// caller says what failed). May probe the server's port once (at most the connect and I/O
/// timeouts of `c`).
pub fn diagnose(place: &str, c: &RedisConfig, e: &RedisError, role: Role) -> Option<String> {
    match reply_code(e) {
        Some("NOAUTH") => {
            let url = if c.url.is_some() {
                ", or put them in the url: redis://USER:PASSWORD@HOST:PORT/DB"
            } else {
                ""
            };
            return Some(format!(
                "Redis at {place} requires a password: set [runlog-redis] password (or \
                 username and password for an ACL user){url}"
            ));
        }
        Some("WRONGPASS") => return Some(wrong_password(place, c)),
        Some("NOPERM") => {
            return Some(format!(
                "Redis at {place} does not let {} run a command runlog needs ({e}); give that \
                 user the {} rules of spec/redis.md, \"Least privilege\"",
                user(c),
                role.rules()
            ))
        }
        Some("READONLY") => return Some(replica(place, None)),
        _ => {}
    }
    if e.kind() == ErrorKind::AuthenticationFailed {
        return Some(wrong_password(place, c));
    }
    let addr = probe_address(c)?;
    let timeouts = (c.connect_timeout(), c.io_timeout());
    if e.kind() == ErrorKind::Parse {
        // Also what the client says of a reply it cannot convert (bytes that are not UTF-8
        // where text was asked for): that is Redis, holding data it should not.
        let reply = probe(&addr, b"PING\r\n", timeouts)?;
        return (!is_resp(&reply) && !reply.is_empty()).then(|| not_redis(place, &reply));
    }
    let tls = crate::upload::is_tls_url(&connection_url(c));
    if !tls && e.is_connection_dropped() && !e.is_connection_refusal() {
        // Spoken to in plain text, a TLS server drops the connection without a word; to a
        // TLS greeting it answers with TLS.
        // The line end makes a plain Redis answer at once (an error) instead of waiting for
        // the rest of an inline command; a TLS server answers the record before it.
        let mut hello = CLIENT_HELLO.to_vec();
        hello.extend_from_slice(b"\r\n");
        let reply = probe(&addr, &hello, timeouts)?;
        if matches!(reply.first(), Some(0x15 | 0x16)) {
            return Some(format!(
                "Redis at {place} speaks TLS on that port: use a rediss:// url (with \
                 tls-ca-file for a private CA)"
            ));
        }
    }
    None
}

/// `(major, minor)` and the whole `redis_version` of an `INFO server` reply.
pub fn version(info: &str) -> Option<((u32, u32), String)> {
    let v = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))?;
    parse_version(v)
}

/// `(major, minor)` and the version as shown, of a version string such as `7.0.15`.
pub fn parse_version(v: &str) -> Option<((u32, u32), String)> {
    let v = v.trim();
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let shown: String = v.chars().take(32).collect();
    Some(((major, minor), shown))
}

/// The error for a server older than [`MIN_VERSION`] (by its `INFO server` reply), if it is.
pub fn too_old(place: &str, info: &str) -> Option<String> {
    too_old_version(place, &version(info)?)
}

/// The error for a server of version `v` ([`parse_version`]), if it is older than
/// [`MIN_VERSION`].
pub fn too_old_version(place: &str, (v, shown): &((u32, u32), String)) -> Option<String> {
    (*v < MIN_VERSION).then(|| {
        format!(
            "Redis at {place} is version {shown:?}; runlog needs Redis {}.{} or later \
             (spec/redis.md): upgrade it, or use another server",
            MIN_VERSION.0, MIN_VERSION.1
        )
    })
}

/// The error for a replica (by its `INFO replication` reply), if the server is one: the
/// shipper must write to the master (a replica that takes writes loses them at its next
/// sync).
pub fn replica_of(place: &str, info: &str) -> Option<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().chars().take(256).collect::<String>())
    };
    let role = field("role:")?;
    if role != "slave" && role != "replica" {
        return None;
    }
    let master = field("master_host:").zip(field("master_port:"));
    Some(replica(place, master.map(|(h, p)| format!("{h}:{p}"))))
}

fn replica(place: &str, master: Option<String>) -> String {
    let of = master.map_or_else(String::new, |m| format!(" of {m:?}"));
    format!(
        "Redis at {place} is a read-only replica{of}: the shipper writes to the master; point \
         [runlog-redis] at the master, or give sentinels and sentinel-master to follow \
         failovers"
    )
}

/// The diagnosis of a TLS connection that failed, when the server at the port speaks plain
/// Redis (or is not Redis at all); `None` if it may well speak TLS.
pub fn diagnose_tls_failure(place: &str, c: &RedisConfig) -> Option<String> {
    let addr = probe_address(c)?;
    let reply = probe(&addr, b"PING\r\n", (c.connect_timeout(), c.io_timeout()))?;
    if is_resp(&reply) {
        return Some(format!(
            "Redis at {place} does not speak TLS on that port (it answered in plain text): \
             use a redis:// url, or the port of the server's tls-port"
        ));
    }
    if reply.is_empty() || matches!(reply.first(), Some(0x15 | 0x16)) {
        return None;
    }
    Some(not_redis(place, &reply))
}

fn wrong_password(place: &str, c: &RedisConfig) -> String {
    format!(
        "Redis at {place} refused the password of {} (WRONGPASS: a wrong password, a user \
         that does not exist or is off, or a server with no password for that user): check \
         username and password in [runlog-redis]",
        user(c)
    )
}

fn not_redis(place: &str, reply: &[u8]) -> String {
    let line = reply.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches('\r');
    let line: String = line.chars().take(60).collect();
    let what = if line.starts_with("HTTP/") {
        " (an HTTP server)"
    } else {
        ""
    };
    format!(
        "the server at {place} is not Redis: it answered {line:?}{what}; check the host and \
         port in [runlog-redis]"
    )
}

/// Whether `reply` starts like a reply of the Redis protocol (RESP2 or RESP3).
fn is_resp(reply: &[u8]) -> bool {
    reply.len() > 1 && b"+-:$*_,#!=(%~>|".contains(&reply[0]) && reply.ends_with(b"\n")
}

/// `host:port` of a single server given by `url` or the fields (not a cluster, Sentinels or
/// a Unix socket).
fn probe_address(c: &RedisConfig) -> Option<String> {
    if !c.cluster.is_empty() || !c.sentinels.is_empty() {
        return None;
    }
    let url = connection_url(c);
    let (scheme, rest) = url.split_once("://")?;
    if scheme.contains("unix") {
        return None;
    }
    let rest = rest.split(['/', '?', '#']).next()?;
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    let has_port = match hostport.rfind(']') {
        Some(close) => hostport[close..].contains(':'),
        None => hostport.contains(':'),
    };
    Some(if has_port {
        hostport.to_owned()
    } else {
        format!("{hostport}:6379")
    })
}

/// Connect to `addr`, send `hello` and return what came back: up to the first line, at most
/// 256 bytes, empty if the server closed the connection without a word. `None` if it could not
/// be reached or said nothing in time (at most [`PROBE_WAIT`]: a probe only refines a message,
/// and must not hold up the shipper's retries).
fn probe(addr: &str, hello: &[u8], (connect, io): (Duration, Duration)) -> Option<Vec<u8>> {
    let (connect, io) = (connect.min(PROBE_WAIT), io.min(PROBE_WAIT));
    let sa = addr.to_socket_addrs().ok()?.next()?;
    let mut s = TcpStream::connect_timeout(&sa, connect).ok()?;
    s.set_read_timeout(Some(io)).ok()?;
    s.set_write_timeout(Some(io)).ok()?;
    s.write_all(hello).ok()?;
    let deadline = Instant::now() + io;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < 256 && !got.contains(&b'\n') && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset after an answer (a TLS alert, then close): what came is the answer.
            Err(_) if !got.is_empty() => break,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(_) => return None,
        }
    }
    got.truncate(256);
    Some(got)
}

/// The longest a probe waits to connect, and then for an answer.
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// A TLS 1.2 ClientHello record (one cipher suite, no extensions): a TLS server answers it
/// with a handshake or an alert record (first byte 0x16 or 0x15), a plain Redis does not.
const CLIENT_HELLO: [u8; 50] = {
    let mut h = [0u8; 50];
    // Record: handshake, TLS 1.0 on the record layer, 45 bytes.
    h[0] = 0x16;
    h[1] = 0x03;
    h[2] = 0x01;
    h[4] = 45;
    // Handshake: ClientHello, 41 bytes, TLS 1.2.
    h[5] = 0x01;
    h[8] = 41;
    h[9] = 0x03;
    h[10] = 0x03;
    // 32 bytes of random (zeros), no session id.
    // Cipher suites: 2 bytes, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.
    h[45] = 0x02;
    h[46] = 0xc0;
    h[47] = 0x2f;
    // Compression methods: 1, null.
    h[48] = 0x01;
    h[49] = 0x00;
    // No extensions.
    h
};

#[cfg(test)]
mod tests {
    use super::*;

    fn table(url: &str) -> RedisConfig {
        RedisConfig {
            url: Some(url.to_owned()),
            ..RedisConfig::default()
        }
    }

    #[test]
    fn the_probe_address_is_the_host_and_port_of_one_server() {
        for (url, want) in [
            ("redis://127.0.0.1:7000/0", Some("127.0.0.1:7000")),
            ("rediss://u:p@h.example:6380/2?x=1", Some("h.example:6380")),
            ("redis://h.example", Some("h.example:6379")),
            ("redis://[::1]:7001/0", Some("[::1]:7001")),
            ("redis://[::1]/0", Some("[::1]:6379")),
            ("redis+unix:///run/redis.sock", None),
        ] {
            assert_eq!(probe_address(&table(url)).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn a_reply_is_told_from_redis_by_its_first_byte() {
        assert!(is_resp(b"+PONG\r\n"));
        assert!(is_resp(b"-NOAUTH Authentication required.\r\n"));
        assert!(!is_resp(b"HTTP/1.1 400 Bad Request\r\n"));
        assert!(!is_resp(b""));
        let m = not_redis(
            "redis://h:80/0",
            b"HTTP/1.1 400 Bad Request\r\nX: \x1b[31m\r\n",
        );
        assert!(
            m.contains("\"HTTP/1.1 400 Bad Request\" (an HTTP server)"),
            "{m}"
        );
        let m = not_redis("redis://h:80/0", b"\x1b]0;x\x07\n");
        assert!(!m.contains('\x1b'), "control characters are escaped: {m}");
    }

    #[test]
    fn a_version_before_6_2_is_too_old() {
        let info = |v: &str| format!("# Server\r\nredis_version:{v}\r\nredis_mode:standalone\r\n");
        assert!(too_old("p", &info("6.0.16")).is_some_and(|m| m.contains("\"6.0.16\"")));
        assert!(too_old("p", &info("5.0.7")).is_some());
        assert!(too_old("p", &info("6.2.0")).is_none());
        assert!(too_old("p", &info("7.0.15")).is_none());
        assert!(too_old("p", &info("10.0.0")).is_none());
        assert!(too_old("p", "no version\r\n").is_none());
        assert_eq!(version(&info("7.2.4")).map(|v| v.0), Some((7, 2)));
    }

    #[test]
    fn a_replica_is_named_with_its_master() {
        let info = "# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\n";
        let m = replica_of("redis://r:1/0", info).unwrap_or_default();
        assert!(m.contains("read-only replica of \"10.0.0.1:6379\""), "{m}");
        assert_eq!(replica_of("p", "role:master\r\n"), None);
    }

    #[test]
    fn the_user_is_named_from_the_fields_or_the_url() {
        assert_eq!(user(&table("redis://h:1/0")), "the default user");
        assert_eq!(user(&table("redis://bob:pw@h:1/0")), "user \"bob\"");
        assert_eq!(user(&table("redis://:pw@h:1/0")), "the default user");
        let c = RedisConfig {
            username: Some("ann".into()),
            ..RedisConfig::default()
        };
        assert_eq!(user(&c), "user \"ann\"");
    }

    #[test]
    fn the_client_hello_has_consistent_lengths() {
        let record = usize::from(CLIENT_HELLO[3]) << 8 | usize::from(CLIENT_HELLO[4]);
        assert_eq!(record + 5, CLIENT_HELLO.len());
        let hs = usize::from(CLIENT_HELLO[8]);
        assert_eq!(hs + 4, record);
    }
}
