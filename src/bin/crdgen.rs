//! Writes the operator's CRDs, one YAML file per CRD, to `crds/` and to the Helm chart's
//! `charts/trusthub-operator/crds/` (exact copies), or only to the directory given as the only
//! argument. CI fails when the committed files differ from what this writes.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dirs = match std::env::args_os().nth(1) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![
            root.join("crds"),
            root.join("charts/trusthub-operator/crds"),
        ],
    };
    for dir in dirs {
        std::fs::create_dir_all(&dir)?;
        for (file, crd) in trusthub_operator::api::crds() {
            let path = dir.join(file);
            std::fs::write(&path, trusthub_operator::api::crd_yaml(&crd)?)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
