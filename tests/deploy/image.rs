//! The Dockerfile agrees with the manifests.

use kube_rollout_exporter::cli::DEFAULT_PORT;

use crate::kustomize::render;
use crate::workload::{exporter, workload};
use crate::{CLUSTER, NAME, NONROOT, PORT_NAME, read, repo_path};

#[test]
fn dockerfile_agrees_with_the_manifests() {
    let text = read(&repo_path("Dockerfile"));
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let args_of = |keyword: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter_map(|l| l.strip_prefix(keyword))
            .filter_map(|rest| rest.strip_prefix(' '))
            .collect()
    };
    let from = args_of("FROM");
    assert!(
        from.first()
            .is_some_and(|f| f.starts_with("rust:1-bookworm ")),
        "builds on Debian 12, the runtime's release: {from:?}"
    );
    assert_eq!(
        from.last(),
        Some(&"gcr.io/distroless/cc-debian12:nonroot"),
        "runs on distroless cc: the binary links glibc and libgcc_s dynamically"
    );
    assert!(
        args_of("RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked")),
        "builds with the locked dependencies"
    );
    assert_eq!(args_of("USER"), [format!("{NONROOT}:{NONROOT}")]);
    assert_eq!(args_of("EXPOSE"), [DEFAULT_PORT.to_string()]);
    let entrypoint = args_of("ENTRYPOINT");
    assert_eq!(entrypoint, [format!("[\"/usr/local/bin/{NAME}\"]")]);
    assert!(
        args_of("COPY").contains(
            &format!("--from=build /src/target/release/{NAME} /usr/local/bin/{NAME}").as_str()
        ),
        "the runtime image gets the binary, and only it"
    );

    let w = workload(&render(CLUSTER));
    let port = exporter(&w)
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(PORT_NAME))
        .map(|p| p.container_port);
    assert_eq!(
        port,
        Some(i32::from(DEFAULT_PORT)),
        "EXPOSE and containerPort"
    );

    let ignored = read(&repo_path(".dockerignore"));
    for entry in ["target/", ".git/"] {
        assert!(
            ignored.lines().any(|l| l.trim() == entry),
            ".dockerignore: {entry}"
        );
    }
}
