//! The control plane's key material, generated per run: a CA, the apiserver's serving
//! certificate signed by it (SANs `localhost`, `127.0.0.1`), the service-account signing key and
//! a random admin bearer token. Nothing is reused between runs and nothing leaves the run's
//! directory.

use std::path::{Path, PathBuf};

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::Error;

/// Paths of the files written by [`Pki::write`], and the admin token.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_pem: String,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_public_key: PathBuf,
    pub token_file: PathBuf,
    pub admin_token: String,
}

impl Pki {
    /// Generates everything into `dir` (which must exist).
    pub fn write(dir: &Path) -> Result<Pki, Error> {
        let pki = |e: rcgen::Error| Error::Pki(e.to_string());
        let ca_key = KeyPair::generate().map_err(pki)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testenv-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(pki)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate().map_err(pki)?;
        let mut serving =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(pki)?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        serving.use_authority_key_identifier_extension = true;
        let serving_cert = serving.signed_by(&serving_key, &issuer).map_err(pki)?;

        let service_account_key = KeyPair::generate().map_err(pki)?;
        let admin_token = random_token();

        let out = Pki {
            ca_cert: dir.join("ca.crt"),
            ca_pem: ca_cert.pem(),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            service_account_key: dir.join("service-account.key"),
            service_account_public_key: dir.join("service-account.pub"),
            token_file: dir.join("tokens.csv"),
            admin_token,
        };
        write_private(&out.ca_cert, &out.ca_pem)?;
        write_private(&out.serving_cert, &serving_cert.pem())?;
        write_private(&out.serving_key, &serving_key.serialize_pem())?;
        write_private(
            &out.service_account_key,
            &service_account_key.serialize_pem(),
        )?;
        write_private(
            &out.service_account_public_key,
            &service_account_key.public_key_pem(),
        )?;
        // token,user,uid,"group1,group2": system:masters bypasses RBAC, so least-privilege tests
        // must use a ServiceAccount token instead (see ControlPlane::service_account_token).
        write_private(
            &out.token_file,
            &format!("{},admin,admin-uid,\"system:masters\"\n", out.admin_token),
        )?;
        Ok(out)
    }
}

fn random_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Io(format!("write {}", path.display()), e))?;
    std::io::Write::write_all(&mut file, contents.as_bytes())
        .map_err(|e| Error::Io(format!("write {}", path.display()), e))
}
