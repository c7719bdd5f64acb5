//! A kubeconfig for the local server: one cluster over plain http on loopback, an empty user
//! (the server has no authentication) and a context in the `default` namespace.

use std::io;
use std::path::Path;

/// Name used for the cluster, user and context entries.
pub const CONTEXT_NAME: &str = "kube-local";

pub fn kubeconfig_yaml(server_url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT_NAME}
  cluster:
    server: {server_url}
contexts:
- name: {CONTEXT_NAME}
  context:
    cluster: {CONTEXT_NAME}
    user: {CONTEXT_NAME}
    namespace: default
current-context: {CONTEXT_NAME}
users:
- name: {CONTEXT_NAME}
  user: {{}}
preferences: {{}}
"
    )
}

pub fn write_kubeconfig(server_url: &str, path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, kubeconfig_yaml(server_url))
}
