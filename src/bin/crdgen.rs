//! Writes the operator's CRDs to `crds/` (or the directory given as the only argument), one YAML
//! file per CRD. CI fails when the committed files differ from what this prints.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds"));
    std::fs::create_dir_all(&dir)?;
    for (file, crd) in trusthub_operator::api::crds() {
        let path = dir.join(file);
        std::fs::write(&path, trusthub_operator::api::crd_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
