//! The `preflight` command from parsed options to exit code: credentials, client, gather,
//! evaluate, print.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;

use super::manifests::{ManifestOptions, manifests};
use super::source::{credentials_from_env, credentials_from_kube};
use super::{
    AuthKind, Outcome, PreflightError, Progress, Report, TerminalProgress, evaluate, gather, render,
};
use crate::twilio::{ClientConfig, Credentials, Endpoints, TwilioClient};

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

/// Parsed command-line options of `trusthub-operator preflight`.
#[derive(Debug, Clone)]
pub struct PreflightOptions {
    pub trust_hub_url: Option<String>,
    pub api_url: Option<String>,
    pub twilio_region: Option<String>,
    pub twilio_edge: Option<String>,
    /// `ns/name` of a Secret to read through the kubeconfig instead of the environment.
    pub secret: Option<String>,
    pub output: Output,
    /// Print the manifests instead of the report.
    pub manifests: bool,
    /// Name of the generated objects.
    pub name: String,
    /// Namespace of the generated objects (default: the `--secret` namespace, else none).
    pub namespace: Option<String>,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
}

/// Runs preflight and returns the process exit code. Output goes to stdout; errors, progress
/// and (with `--manifests`) the verdict go to stderr.
pub async fn run(options: PreflightOptions) -> i32 {
    match run_inner(&options).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trusthub-operator preflight: {e}");
            e.exit_code()
        }
    }
}

async fn credentials(
    options: &PreflightOptions,
) -> Result<(Credentials, AuthKind, Option<(String, String)>), PreflightError> {
    match &options.secret {
        Some(reference) => {
            let (credentials, auth, ns, name) = credentials_from_kube(reference).await?;
            Ok((credentials, auth, Some((ns, name))))
        }
        None => {
            let (credentials, auth) = credentials_from_env(|name| std::env::var(name).ok())?;
            Ok((credentials, auth, None))
        }
    }
}

async fn run_inner(options: &PreflightOptions) -> Result<i32, PreflightError> {
    let endpoints = Endpoints::from_flags(
        options.trust_hub_url.as_deref(),
        options.api_url.as_deref(),
        options.twilio_region.as_deref(),
        options.twilio_edge.as_deref(),
    )
    .map_err(|e| PreflightError::Usage(e.to_string()))?;
    let (credentials, auth, secret) = credentials(options).await?;
    let config = ClientConfig {
        endpoints,
        max_in_flight: options.max_in_flight.max(1),
        request_timeout: options.request_timeout,
        ..ClientConfig::default()
    };
    let client = TwilioClient::new(credentials, config)?;
    let progress = TerminalProgress::new();
    let facts = gather(&client, auth, Utc::now(), &progress, options.max_in_flight).await;
    progress.done();
    let facts = facts?;
    let report = evaluate(&facts);
    let mut stdout = std::io::stdout().lock();
    if options.manifests {
        print_manifests(&mut stdout, &report, options, secret)?;
    } else {
        let text = match options.output {
            Output::Table => render::table(&report),
            Output::Json => render::json(&report)?,
        };
        stdout.write_all(text.as_bytes())?;
    }
    stdout.flush()?;
    Ok(report.exit_code)
}

fn print_manifests(
    out: &mut impl Write,
    report: &Report,
    options: &PreflightOptions,
    secret: Option<(String, String)>,
) -> Result<(), PreflightError> {
    for f in report
        .findings
        .iter()
        .filter(|f| f.outcome == Outcome::Fail)
    {
        eprintln!("{}: {}", f.check.label(), f.detail);
    }
    eprintln!("{}", render::verdict(report));
    let Some(plan) = &report.plan else {
        eprintln!("no manifests: there is no approved Primary Business Profile to bind");
        return Ok(());
    };
    let (secret_ns, secret_name) = secret.unzip();
    let manifest_options = ManifestOptions {
        name: options.name.clone(),
        namespace: options.namespace.clone().or(secret_ns),
        secret_name: secret_name.unwrap_or_else(|| "twilio-credentials".to_owned()),
    };
    out.write_all(manifests(plan, &manifest_options)?.as_bytes())?;
    Ok(())
}
