# The exporter's container image: `docker build -t kube-rollout-exporter:0.1.0 .`
# (deploy/README.md). No container engine runs on the project's machines or in CI, so this file is
# never built there: it is kept plain and conventional, and tests/deploy.rs checks that its user
# and port agree with deploy/kubernetes/.

# Build the release binary with exactly the dependencies in Cargo.lock. Bookworm is Debian 12, the
# release of the runtime image below: the binary needs that glibc or an older one.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kube-rollout-exporter

# Run: distroless "cc" has the glibc and libgcc_s the binary links dynamically (the "static"
# image has neither), CA certificates, no shell and no package manager. Only the binary is added.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/kube-rollout-exporter /usr/local/bin/kube-rollout-exporter
# The image's `nonroot` user; the Deployment runs as the same uid and gid.
USER 65532:65532
EXPOSE 10360
ENTRYPOINT ["/usr/local/bin/kube-rollout-exporter"]
