//! Certificates for the TLS tests, made with the `openssl` command for each test: a private
//! CA with a server certificate (for `localhost` and 127.0.0.1) and a client certificate, and
//! a second, unrelated CA with a client certificate of its own (the "wrong CA").

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::redis::Tls;

/// Run `openssl ARGS` in `dir`; panic with what to install if it cannot be run.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "openssl cannot be run ({e}): the TLS tests make their certificates with it; \
                 install it (Debian/Ubuntu: `apt-get install openssl`), then re-run"
            )
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The files [`Certs::make`] writes.
#[derive(Clone, Debug)]
pub struct Certs {
    /// The CA the server's certificate and the client certificate are signed by.
    pub ca: PathBuf,
    /// The server's certificate, for `localhost` and 127.0.0.1.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// A client certificate (`CN=runlog-client`), signed by `ca`.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// Another CA, which signed nothing the server knows.
    pub other_ca: PathBuf,
    /// A client certificate signed by `other_ca`.
    pub other_client_cert: PathBuf,
    /// Its key.
    pub other_client_key: PathBuf,
}

/// A new EC (P-256) key `name.key` and a certificate `name.crt` for `subject`: self-signed
/// when `ca` is `None`, else `Some((ca_name, ext))`: signed by that CA (`<ca_name>.crt` and
/// `.key` in `dir`) with the X.509 extensions `ext` (an `openssl -extfile`).
fn cert(dir: &Path, name: &str, subject: &str, ca: Option<(&str, &str)>) {
    let (key, crt, csr) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("{name}.csr"),
    );
    let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let Some((ca_name, ext)) = ca else {
        let mut args = vec!["req", "-x509"];
        args.extend(new_key);
        args.extend(["-nodes", "-keyout", &key, "-out", &crt, "-days", "2"]);
        args.extend(["-subj", subject]);
        openssl(dir, &args);
        return;
    };
    let mut args = vec!["req"];
    args.extend(new_key);
    args.extend(["-nodes", "-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(dir, &args);
    let ext_file = format!("{name}.ext");
    fs::write(dir.join(&ext_file), ext).expect("write the extensions file");
    let (ca_crt, ca_key) = (format!("{ca_name}.crt"), format!("{ca_name}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext_file,
        ],
    );
}

impl Certs {
    /// Make every certificate in `dir`.
    pub fn make(dir: &Path) -> Certs {
        fs::create_dir_all(dir).expect("create the certificate directory");
        const SERVER: &str = "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
                              extendedKeyUsage=serverAuth\n";
        const CLIENT: &str = "extendedKeyUsage=clientAuth\n";
        cert(dir, "ca", "/CN=runlog-test-ca", None);
        cert(dir, "srv", "/CN=localhost", Some(("ca", SERVER)));
        cert(dir, "client", "/CN=runlog-client", Some(("ca", CLIENT)));
        cert(dir, "other-ca", "/CN=runlog-other-ca", None);
        cert(
            dir,
            "other-client",
            "/CN=runlog-client",
            Some(("other-ca", CLIENT)),
        );
        let p = |f: &str| dir.join(f);
        Certs {
            ca: p("ca.crt"),
            server_cert: p("srv.crt"),
            server_key: p("srv.key"),
            client_cert: p("client.crt"),
            client_key: p("client.key"),
            other_ca: p("other-ca.crt"),
            other_client_cert: p("other-client.crt"),
            other_client_key: p("other-client.key"),
        }
    }

    /// The server side for [`crate::redis::RedisServer::start_tls`]; with `mutual`, the server
    /// asks for a client certificate signed by [`Certs::ca`] and the test presents
    /// [`Certs::client_cert`].
    pub fn server(&self, mutual: bool) -> Tls {
        Tls {
            server_cert: self.server_cert.clone(),
            server_key: self.server_key.clone(),
            ca: self.ca.clone(),
            client: mutual.then(|| (self.client_cert.clone(), self.client_key.clone())),
        }
    }
}
