//! Certificates the TLS tests make with openssl: a self-signed one for shardgate's
//! own TLS, and a CA with a server certificate for MariaDB's.

use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate and key (RSA) in `dir`: (cert, key).
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ],
    );
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// A CA, a server certificate from it (for 127.0.0.1 and `db.sandbox`), and a CA
/// that signed nothing, in a directory of their own.
pub struct BackendCerts {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl BackendCerts {
    pub fn make() -> BackendCerts {
        let dir = tempfile::tempdir().expect("a directory").keep();
        for ca in ["ca", "other_ca"] {
            openssl(
                &dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=shardgate test {ca}"),
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.pem"),
                ],
            );
        }
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:db.sandbox\n",
        )
        .expect("write server.ext");
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=db.sandbox",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        BackendCerts {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other_ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            dir,
        }
    }

    /// The MariaDB options that serve the server certificate.
    pub fn server_options(&self) -> Vec<String> {
        vec![
            format!("--ssl-ca={}", self.ca.display()),
            format!("--ssl-cert={}", self.server_cert.display()),
            format!("--ssl-key={}", self.server_key.display()),
        ]
    }
}
