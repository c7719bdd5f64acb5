//! The container image's invariants, read from the Dockerfile (no container engine runs in the
//! test environment, so the image itself is not built here): a multi-stage build whose final
//! stage is distroless (or scratch), holds only the `trusthub-operator` binary, runs as a
//! non-root user, and starts `trusthub-operator run` — which the chart's `args` rely on.

use crate::support::root;

/// One Dockerfile instruction: keyword (upper case) and its arguments, continuation lines joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((keyword.to_uppercase(), args.trim().to_string()));
        current.clear();
    }
    out
}

/// Stages: (FROM arguments, instructions of the stage).
fn stages(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (keyword, args) in instructions(text) {
        if keyword == "FROM" {
            out.push((args, Vec::new()));
        } else if let Some(stage) = out.last_mut() {
            stage.1.push((keyword, args));
        }
    }
    out
}

#[test]
fn chart_image_dockerfile_invariants() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("read Dockerfile");
    let stages = stages(&text);
    assert!(stages.len() >= 2, "multi-stage build: {stages:?}");

    let (builder_from, builder) = &stages[0];
    let builder_name = builder_from
        .rsplit_once(" AS ")
        .or_else(|| builder_from.rsplit_once(" as "))
        .map(|(_, name)| name.trim().to_string())
        .expect("the builder stage is named");
    let build = builder
        .iter()
        .filter(|(k, _)| k == "RUN")
        .map(|(_, a)| a.as_str())
        .find(|a| a.contains("cargo build"))
        .expect("the builder runs cargo build");
    for part in ["--release", "--locked", "--bin trusthub-operator"] {
        assert!(build.contains(part), "cargo build {part}: {build}");
    }

    let (final_from, final_stage) = stages.last().expect("final stage");
    let image = final_from.split_whitespace().next().expect("base image");
    assert!(
        image.starts_with("gcr.io/distroless/") || image == "scratch",
        "final stage from distroless or scratch, got {image}"
    );
    assert!(
        image == "scratch" || image.ends_with(":nonroot"),
        "the distroless nonroot variant: {image}"
    );

    let copies: Vec<&String> = final_stage
        .iter()
        .filter(|(k, _)| k == "COPY" || k == "ADD")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "the final stage copies one thing: {copies:?}"
    );
    let copy: Vec<&str> = copies[0].split_whitespace().collect();
    assert_eq!(
        copy,
        [
            format!("--from={builder_name}").as_str(),
            "/out/trusthub-operator",
            "/usr/local/bin/trusthub-operator"
        ],
        "only the operator binary, from the builder"
    );
    assert!(
        !final_stage.iter().any(|(k, _)| k == "RUN"),
        "nothing runs in the final stage (no shell there)"
    );

    let users: Vec<&String> = final_stage
        .iter()
        .filter(|(k, _)| k == "USER")
        .map(|(_, a)| a)
        .collect();
    let user = users.last().expect("the final stage sets USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert_eq!(
        uid, "65532",
        "numeric non-root user, as the chart's runAsUser"
    );

    let entrypoint = final_stage
        .iter()
        .rev()
        .find(|(k, _)| k == "ENTRYPOINT")
        .map(|(_, a)| a)
        .expect("ENTRYPOINT");
    let entrypoint: Vec<String> =
        serde_json::from_str(entrypoint).expect("ENTRYPOINT in exec (JSON) form");
    assert_eq!(entrypoint, ["/usr/local/bin/trusthub-operator", "run"]);
    assert!(
        !final_stage.iter().any(|(k, _)| k == "CMD"),
        "no CMD: the chart's args are the flags of `run`"
    );
}

#[test]
fn chart_image_dockerignore_keeps_the_context_small() {
    let text = std::fs::read_to_string(root().join(".dockerignore")).expect("read .dockerignore");
    let entries: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target", ".git", ".tools"] {
        assert!(
            entries.contains(&needed),
            ".dockerignore lists {needed}: {entries:?}"
        );
    }
    // What cargo needs to build must stay in the context.
    for kept in ["src", "crates", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !entries.contains(&kept),
            ".dockerignore must not drop {kept}"
        );
    }
}
