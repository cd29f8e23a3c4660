//! `rediss://` with `[runlog-redis] tls-ca-file`: the shipper uploads over TLS to a server whose
//! certificate is signed by a private CA, and refuses, clearly, when it is not told to trust
//! that CA. Certificates are made with the `openssl` command for each run.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use runlog_e2e::redis::{check_consistent, free_port, require_tool, RedisServer};
use runlog_e2e::shipper::{run_kid, ship_once, KidArgs, KidLine, Kind, ShipperConfig};

const KID: &str = env!("CARGO_BIN_EXE_jobkid");

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl cannot be run ({e}): the TLS test makes its certificates with it; install openssl")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for localhost / 127.0.0.1 signed by it.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=runlog-test-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write ext.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn ships_over_tls_with_a_private_ca_and_refuses_an_untrusted_server() {
    require_tool("redis-server");
    let t = tempfile::tempdir().expect("tempdir");
    make_certs(t.path());
    let tls_port = free_port().to_string();
    let p = |f: &str| t.path().join(f).to_string_lossy().into_owned();
    let (crt, key, ca) = (p("srv.crt"), p("srv.key"), p("ca.crt"));
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
    let text = ShipperConfig::new(&journal, &url, 10, 10).toml().replace(
        "[runlog-redis]\n",
        &format!("[runlog-redis]\ntls-ca-file = {:?}\n", ca),
    );
    let trusted = t.path().join("ca.toml");
    fs::write(&trusted, text).expect("write config");
    let (st, out) = ship_once(&trusted, &log);
    assert!(st.success(), "TLS ship failed:\n{out}");
    let store = check_consistent(&mut conn, "runlog").expect("consistent store");
    let mut got = store.ids("tls job");
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
}
