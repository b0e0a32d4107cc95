//! trainjob-gc deletes finished Kubeflow TrainJobs once their retention time has passed.
//!
//! The modules follow one run: [`config`] turns flags, the environment and a ConfigMap into
//! [`config::Settings`]; [`api`] lists TrainJobs page by page; [`trainjob`] reads each item;
//! [`decide`] decides about it without side effects; [`run`] deletes what is due and
//! [`report`] writes the audit report, the summary and the exit code ([`exit`]).

pub mod api;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod constants;
pub mod decide;
pub mod duration;
pub mod exit;
pub mod logging;
pub mod preflight;
pub mod report;
pub mod run;
pub mod trainjob;
