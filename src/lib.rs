//! kube-rollout-exporter: the whole Kubernetes rollout lifecycle as Prometheus metrics.
//!
//! `kubectl rollout status` reports success once the new ReplicaSet is available, while pods of
//! the old ReplicaSets may still be Terminating for minutes. This crate watches Deployments,
//! ReplicaSets and Pods and measures both moments, and every termination in between.
//!
//! The crate is a pure core with thin adapters around it: [`model`] holds every definition (no
//! I/O, time passed in); [`decode`] turns the API server's JSON into the model's lean inputs.
//! `ARCHITECTURE.md` maps the rest.

#![forbid(unsafe_code)]

pub mod board;
pub mod cli;
pub mod compress;
pub mod decode;
pub mod demo;
pub mod error;
pub mod http;
pub mod inspect;
pub mod metrics;
pub mod model;
pub mod process;
pub mod selection;
pub mod shard;
pub mod shared;
pub mod wait;
pub mod watch;
pub mod web_config;
