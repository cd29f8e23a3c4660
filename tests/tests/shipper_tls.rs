//! `rediss://` with `[runlog-redis] tls-ca-file`: the shipper uploads over TLS to a server whose
//! certificate is signed by a private CA, and refuses, clearly, when it is not told to trust
//! that CA. Certificates are made with the `openssl` command for each run.

use std::path::Path;

use runlog_e2e::redis::{check_consistent, free_port, require_tool, RedisServer};
use runlog_e2e::shipper::{run_kid, ship_once, toml_str, KidArgs, KidLine, Kind, ShipperConfig};
use runlog_e2e::tls::Certs;

const KID: &str = env!("CARGO_BIN_EXE_jobkid");

#[test]
fn ships_over_tls_with_a_private_ca_and_refuses_an_untrusted_server() {
    require_tool("redis-server");
    let t = tempfile::tempdir().expect("tempdir");
    let certs = Certs::make(&t.path().join("certs"));
    let tls_port = free_port().to_string();
    let p = |f: &Path| f.to_string_lossy().into_owned();
    let (crt, key, ca) = (p(&certs.server_cert), p(&certs.server_key), p(&certs.ca));
    let redis = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &crt,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    let journal = t.path().join("journal");
    let lines = run_kid(
        Path::new(KID),
        &KidArgs::new(&journal, "tls job", 3, 20, &[Kind::Ok, Kind::Err, Kind::Ok]),
    );
    let ids: Vec<String> = lines
        .iter()
        .filter_map(|l| match l {
            KidLine::Run { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 3, "{lines:?}");
    let log = t.path().join("shipper.log");
    let url = format!("rediss://localhost:{tls_port}/0");

    // Without the CA the server's certificate is not trusted: nothing is uploaded.
    let untrusted = ShipperConfig::new(&journal, &url, 10, 10).write(&t.path().join("no-ca.toml"));
    let (st, out) = ship_once(&untrusted, &log);
    assert!(!st.success(), "shipped to an untrusted server:\n{out}");
    assert!(
        out.contains(&format!("rediss://localhost:{tls_port}/0")) && out.contains("certificate"),
        "the error should name the server and the certificate problem:\n{out}"
    );
    let mut conn = redis.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("runlog:*")
        .query(&mut conn)
        .expect("KEYS");
    assert!(
        keys.iter()
            .all(|k| k == "runlog:schema" || k == "runlog:epoch")
            && keys.len() <= 2,
        "{keys:?}"
    );

    // With tls-ca-file it ships, over TLS only (the test reads back over the plain port).
    let mut trusted = ShipperConfig::new(&journal, &url, 10, 10);
    trusted.redis_extra = format!("tls-ca-file = {}\n", toml_str(&ca));
    let trusted = trusted.write(&t.path().join("ca.toml"));
    let (st, out) = ship_once(&trusted, &log);
    assert!(st.success(), "TLS ship failed:\n{out}");
    let store = check_consistent(&mut conn, "runlog").expect("consistent store");
    let mut got = store.ids("tls job");
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
}
