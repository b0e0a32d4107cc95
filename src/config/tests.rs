//! Configuration from literal key/value pairs. The process environment is never read or changed.

use super::*;

const CONFIGMAP_NAME: &str = "trainjob-gc/trainjob-gc-policy";

fn key(name: &str) -> String {
    format!("{ENV_PREFIX}{name}")
}

/// Builds a layer of `(name, value)` pairs, names without the prefix, as a flag layer would.
fn flags(pairs: &[(&str, &str)]) -> Layer {
    Layer {
        source: Source::Flag,
        values: pairs
            .iter()
            .map(|(name, value)| (key(name), (*value).to_owned()))
            .collect(),
    }
}

/// Builds the environment layer of `(name, value)` pairs, names without the prefix.
fn environment(pairs: &[(&str, &str)]) -> (Layer, Vec<Problem>) {
    environment_layer(
        pairs
            .iter()
            .map(|(name, value)| (key(name), (*value).to_owned())),
    )
}

/// Builds the layer of a ConfigMap whose data keys are given in full.
fn configmap(data: &[(&str, &str)]) -> (Layer, Vec<Problem>) {
    let data = data
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    configmap_layer(CONFIGMAP_NAME, data)
}

/// Reads settings from the environment alone, failing the test on an unknown variable.
fn from_environment(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let (env, problems) = environment(pairs);
    assert_eq!(problems, vec![], "environment layer");
    Settings::from_raw(&Merged::from_layers(&[&env]))
}

/// Lists every problem of an environment, from the layer and from the check.
fn problems_of(pairs: &[(&str, &str)]) -> Vec<Problem> {
    let (env, mut problems) = environment(pairs);
    if let Err(err) = Settings::from_raw(&Merged::from_layers(&[&env])) {
        problems.extend(err.0);
    }
    problems
}

fn effective(settings: &Settings, name: &str) -> (String, Source) {
    let key = key(name);
    let (_, value, source) = settings
        .effective
        .iter()
        .find(|(effective_key, _, _)| *effective_key == key)
        .unwrap_or_else(|| panic!("{key} is not among the effective settings"));
    (value.clone(), source.clone())
}

#[test]
fn defaults_with_only_ttl() {
    let settings = from_environment(&[("TTL", "7d")]).unwrap();
    let week = Duration::from_secs(7 * 86_400);
    let policy = &settings.policy;
    assert_eq!(policy.kind, PolicyKind::Ttl);
    assert_eq!(
        policy.ttl_succeeded,
        Ttl {
            duration: week,
            source: "TRAINJOB_GC_TTL"
        }
    );
    assert_eq!(policy.ttl_failed, policy.ttl_succeeded);
    assert_eq!(policy.max_ttl, None);
    assert_eq!(policy.keep_last, 0);
    assert_eq!(policy.invalid_annotation, InvalidAnnotation::Keep);
    assert_eq!(policy.include, Include::default());
    assert!(settings.dry_run);
    assert_eq!(settings.configmap, None);
    assert_eq!(settings.scope, Scope::default());
    assert_eq!(settings.report, None);
    assert_eq!(settings.log_format, LogFormat::Text);
    assert_eq!(settings.log_level, tracing::Level::INFO);
    assert_eq!(settings.limits, Limits::default());
}

#[test]
fn settings_table_defaults_match_code() {
    let mut pairs = vec![("TTL", "7d")];
    for spec in SETTINGS {
        if let Some(default) = spec.default.filter(|default| !default.is_empty()) {
            pairs.push((spec.name, default));
        }
    }
    let explicit = from_environment(&pairs).unwrap();
    let implicit = from_environment(&[("TTL", "7d")]).unwrap();
    assert_eq!(explicit.policy, implicit.policy);
    assert_eq!(explicit.dry_run, implicit.dry_run);
    assert_eq!(explicit.scope, implicit.scope);
    assert_eq!(explicit.log_format, implicit.log_format);
    assert_eq!(explicit.log_level, implicit.log_level);
    assert_eq!(explicit.limits, implicit.limits);
}

#[test]
fn effective_values_name_default_source() {
    let settings = from_environment(&[("TTL", "7d")]).unwrap();
    assert_eq!(
        effective(&settings, "PAGE_SIZE"),
        ("500".to_owned(), Source::Default)
    );
    assert_eq!(
        effective(&settings, "TTL"),
        ("7d".to_owned(), Source::Environment)
    );
    assert_eq!(
        effective(&settings, "MAX_TTL"),
        ("(unset)".to_owned(), Source::Default)
    );
    assert_eq!(
        settings.effective.len(),
        SETTINGS.len(),
        "every setting is logged"
    );
}

#[test]
fn flag_beats_environment_beats_configmap() {
    let flag = flags(&[("NAMESPACES", "from-flag")]);
    let (env, _) = environment(&[("NAMESPACES", "from-env"), ("TTL", "1d")]);
    let (map, _) = configmap(&[
        ("TRAINJOB_GC_NAMESPACES", "from-configmap"),
        ("TRAINJOB_GC_TTL", "2d"),
        ("TRAINJOB_GC_KEEP_LAST", "3"),
    ]);
    let settings = Settings::from_raw(&Merged::from_layers(&[&flag, &env, &map])).unwrap();

    assert_eq!(settings.scope.namespaces, vec!["from-flag"]);
    assert_eq!(
        effective(&settings, "NAMESPACES"),
        ("from-flag".to_owned(), Source::Flag)
    );
    assert_eq!(
        effective(&settings, "TTL"),
        ("1d".to_owned(), Source::Environment)
    );
    assert_eq!(settings.policy.keep_last, 3);
    assert_eq!(
        effective(&settings, "KEEP_LAST"),
        ("3".to_owned(), Source::ConfigMap(CONFIGMAP_NAME.to_owned()))
    );
    assert_eq!(
        effective(&settings, "LOG_FORMAT"),
        ("text".to_owned(), Source::Default)
    );
}

#[test]
fn environment_beats_configmap_without_flag() {
    let (env, _) = environment(&[("NAMESPACES", "from-env"), ("TTL", "1d")]);
    let (map, _) = configmap(&[("TRAINJOB_GC_NAMESPACES", "from-configmap")]);
    let settings = Settings::from_raw(&Merged::from_layers(&[&env, &map])).unwrap();
    assert_eq!(settings.scope.namespaces, vec!["from-env"]);
}

#[test]
fn problem_names_its_source() {
    let (env, _) = environment(&[("TTL", "1d")]);
    let (map, _) = configmap(&[("TRAINJOB_GC_PAGE_SIZE", "0")]);
    let err = Settings::from_raw(&Merged::from_layers(&[&env, &map])).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(
        err.0[0].source,
        Some(Source::ConfigMap(CONFIGMAP_NAME.to_owned()))
    );
    assert!(err.0[0].to_string().starts_with(
        "TRAINJOB_GC_PAGE_SIZE=\"0\" (from ConfigMap trainjob-gc/trainjob-gc-policy) "
    ));
}

#[test]
fn empty_environment_value_is_unset() {
    let (env, problems) = environment(&[("TTL", "7d"), ("MAX_TTL", ""), ("REPORT", "")]);
    assert_eq!(problems, vec![]);
    assert!(!env.values.contains_key("TRAINJOB_GC_MAX_TTL"));
    let settings = Settings::from_raw(&Merged::from_layers(&[&env])).unwrap();
    assert_eq!(settings.policy.max_ttl, None);
    assert_eq!(settings.report, None);
}

#[test]
fn empty_ttl_is_missing() {
    let problems = problems_of(&[("TTL", "")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "TRAINJOB_GC_TTL");
    assert_eq!(problems[0].value, None);
}

#[test]
fn empty_flag_leaves_environment_value() {
    let flag = flags(&[("NAMESPACES", "")]);
    let (env, _) = environment(&[("NAMESPACES", "team-a"), ("TTL", "1d")]);
    let settings = Settings::from_raw(&Merged::from_layers(&[&flag, &env])).unwrap();
    assert_eq!(settings.scope.namespaces, vec!["team-a"]);
    assert_eq!(
        effective(&settings, "NAMESPACES"),
        ("team-a".to_owned(), Source::Environment)
    );
}

#[test]
fn empty_configmap_value_is_unset() {
    let (env, _) = environment(&[("TTL", "1d")]);
    let (map, problems) = configmap(&[("TRAINJOB_GC_KEEP_LAST", "")]);
    assert_eq!(problems, vec![]);
    let settings = Settings::from_raw(&Merged::from_layers(&[&env, &map])).unwrap();
    assert_eq!(settings.policy.keep_last, 0);
}

#[test]
fn blank_value_is_a_problem() {
    let problems = problems_of(&[("TTL", "1d"), ("REPORT", "  ")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let problem = &problems[0];
    assert_eq!(problem.key, "TRAINJOB_GC_REPORT");
    assert!(problem.message.contains("is blank"), "{problem}");
    assert!(problem.message.contains("/tmp/audit.jsonl"), "{problem}");
}

#[test]
fn blank_value_names_the_default() {
    let problems = problems_of(&[("TTL", "1d"), ("PAGE_SIZE", " ")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("the default 500"),
        "{}",
        problems[0]
    );
}

#[test]
fn service_link_variables_are_ignored() {
    let names = [
        "SERVICE_HOST",
        "SERVICE_PORT",
        "SERVICE_PORT_HTTPS",
        "PORT",
        "PORT_443_TCP",
        "PORT_443_TCP_PROTO",
        "PORT_443_TCP_PORT",
        "PORT_443_TCP_ADDR",
        "PORT_53_UDP_ADDR",
        "METRICS_SERVICE_HOST",
        "METRICS_SERVICE_PORT_HTTP_METRICS",
        "METRICS_PORT",
        "METRICS_PORT_8080_TCP_ADDR",
    ];
    let mut pairs: Vec<(&str, &str)> = names.iter().map(|name| (*name, "10.0.0.1")).collect();
    pairs.push(("TTL", "1d"));
    let (env, problems) = environment(&pairs);
    assert_eq!(problems, vec![]);
    assert_eq!(
        env.values.keys().collect::<Vec<_>>(),
        vec!["TRAINJOB_GC_TTL"]
    );
}

#[test]
fn other_prefixes_are_ignored() {
    let (env, problems) = environment_layer([
        ("PATH".to_owned(), "/bin".to_owned()),
        ("TRAINJOB_GCTTL".to_owned(), "1d".to_owned()),
        ("KUBERNETES_SERVICE_HOST".to_owned(), "10.0.0.1".to_owned()),
    ]);
    assert_eq!(problems, vec![]);
    assert!(env.values.is_empty());
}

#[test]
fn non_utf8_variable_under_prefix_rejected() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    let bad = || OsString::from_vec(vec![b'7', 0xff, b'd']);
    let (env, problems) = environment_layer_os([
        (OsString::from("TRAINJOB_GC_TTL"), bad()),
        (OsString::from("LANG_OTHER"), bad()),
        (OsString::from_vec(vec![b'X', 0xfe]), OsString::from("1")),
        (
            OsString::from("TRAINJOB_GC_DRY_RUN"),
            OsString::from("true"),
        ),
    ]);
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["TRAINJOB_GC_TTL"]);
    assert_eq!(problems[0].value.as_deref(), Some("7\u{FFFD}d"));
    assert!(
        problems[0].message.contains("not valid UTF-8"),
        "{}",
        problems[0]
    );
    assert_eq!(
        env.values.keys().collect::<Vec<_>>(),
        vec!["TRAINJOB_GC_DRY_RUN"]
    );
}

#[test]
fn unknown_variable_gets_a_suggestion() {
    let problems = problems_of(&[("TLL", "7d")]);
    let unknown = problems
        .iter()
        .find(|problem| problem.key == "TRAINJOB_GC_TLL")
        .expect("TRAINJOB_GC_TLL is reported");
    assert_eq!(unknown.value.as_deref(), Some("7d"));
    assert_eq!(unknown.source, Some(Source::Environment));
    assert!(
        unknown.message.contains("did you mean TRAINJOB_GC_TTL?"),
        "{unknown}"
    );
}

#[test]
fn unknown_variable_suggestions() {
    let cases = [
        ("KEEP_LATEST", "did you mean TRAINJOB_GC_KEEP_LAST?"),
        ("TTL_SUCCEDED", "did you mean TRAINJOB_GC_TTL_SUCCEEDED?"),
        ("DRYRUN", "did you mean TRAINJOB_GC_DRY_RUN?"),
        ("COLOUR", "see the settings table in the README"),
    ];
    for (name, hint) in cases {
        let (_, problems) = environment(&[(name, "1")]);
        assert_eq!(problems.len(), 1, "{name}: {problems:?}");
        assert!(problems[0].message.contains(hint), "{}", problems[0]);
    }
}

#[test]
fn unknown_configmap_key_gets_a_suggestion() {
    let (layer, problems) = configmap(&[("TRAINJOB_GC_TLL", "7d"), ("TTL", "7d")]);
    assert!(layer.values.is_empty());
    assert_eq!(problems.len(), 2, "{problems:?}");
    for problem in &problems {
        assert!(
            problem.message.contains("did you mean TRAINJOB_GC_TTL?"),
            "{problem}"
        );
        assert_eq!(
            problem.source,
            Some(Source::ConfigMap(CONFIGMAP_NAME.to_owned()))
        );
    }
}

#[test]
fn configmap_rejects_process_only_settings() {
    for name in ["TRAINJOB_GC_DRY_RUN", "TRAINJOB_GC_CONFIGMAP"] {
        for value in ["false", ""] {
            let (layer, problems) = configmap(&[(name, value), ("TRAINJOB_GC_TTL", "1d")]);
            assert!(!layer.values.contains_key(name), "{name}={value:?}");
            assert_eq!(problems.len(), 1, "{name}={value:?}: {problems:?}");
            let message = problems[0].to_string();
            assert!(message.starts_with(name), "{message}");
            assert!(
                message.contains("is not allowed in a ConfigMap"),
                "{message}"
            );
            assert!(message.contains(CONFIGMAP_NAME), "{message}");
        }
    }
}

#[test]
fn process_only_settings_from_environment() {
    let settings = from_environment(&[
        ("TTL", "1d"),
        ("DRY_RUN", "FALSE"),
        ("CONFIGMAP", CONFIGMAP_NAME),
    ])
    .unwrap();
    assert!(!settings.dry_run);
    assert_eq!(
        settings.configmap,
        Some(("trainjob-gc".to_owned(), "trainjob-gc-policy".to_owned()))
    );
}

#[test]
fn delete_on_completion_has_zero_ttls() {
    let settings = from_environment(&[("POLICY", "delete_on_completion")]).unwrap();
    let zero = Ttl {
        duration: Duration::ZERO,
        source: "TRAINJOB_GC_POLICY=delete_on_completion",
    };
    assert_eq!(settings.policy.kind, PolicyKind::DeleteOnCompletion);
    assert_eq!(settings.policy.ttl_succeeded, zero);
    assert_eq!(settings.policy.ttl_failed, zero);
}

#[test]
fn delete_on_completion_contradicts_every_ttl() {
    let problems = problems_of(&[
        ("POLICY", "delete_on_completion"),
        ("TTL", "7d"),
        ("TTL_SUCCEEDED", "1d"),
        ("TTL_FAILED", "14d"),
    ]);
    let keys: Vec<&str> = problems
        .iter()
        .map(|problem| problem.key.as_str())
        .collect();
    assert_eq!(
        keys,
        vec![
            "TRAINJOB_GC_TTL",
            "TRAINJOB_GC_TTL_SUCCEEDED",
            "TRAINJOB_GC_TTL_FAILED"
        ]
    );
    for problem in &problems {
        assert!(problem.message.contains("contradicts"), "{problem}");
        assert!(problem.message.contains("TTL_SUCCEEDED=0s"), "{problem}");
    }
}

#[test]
fn per_outcome_ttls_override_ttl() {
    let settings = from_environment(&[("TTL", "7d"), ("TTL_FAILED", "14d")]).unwrap();
    assert_eq!(settings.policy.ttl_succeeded.source, "TRAINJOB_GC_TTL");
    assert_eq!(settings.policy.ttl_failed.source, "TRAINJOB_GC_TTL_FAILED");
    assert_eq!(
        settings.policy.ttl_failed.duration,
        Duration::from_secs(14 * 86_400)
    );
}

#[test]
fn per_outcome_ttls_without_ttl() {
    let settings = from_environment(&[("TTL_SUCCEEDED", "0s"), ("TTL_FAILED", "14d")]).unwrap();
    assert_eq!(settings.policy.ttl_succeeded.duration, Duration::ZERO);
    assert_eq!(
        settings.policy.ttl_succeeded.source,
        "TRAINJOB_GC_TTL_SUCCEEDED"
    );
    assert_eq!(settings.policy.ttl_failed.source, "TRAINJOB_GC_TTL_FAILED");
}

#[test]
fn ttl_policy_missing_a_ttl() {
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "no TTL for any TrainJob"),
        (&[("TTL_SUCCEEDED", "1d")], "no TTL for failed TrainJobs"),
        (&[("TTL_FAILED", "1d")], "no TTL for succeeded TrainJobs"),
    ];
    for (pairs, hint) in cases {
        let problems = problems_of(pairs);
        assert_eq!(problems.len(), 1, "{pairs:?}: {problems:?}");
        let problem = &problems[0];
        assert_eq!(problem.key, "TRAINJOB_GC_TTL");
        assert_eq!(problem.value, None);
        assert!(problem.message.contains(hint), "{problem}");
        assert!(problem.message.contains("TRAINJOB_GC_TTL=7d"), "{problem}");
    }
}

#[test]
fn invalid_ttl_is_not_also_missing() {
    let problems = problems_of(&[("TTL_SUCCEEDED", "1x")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "TRAINJOB_GC_TTL_SUCCEEDED");
}

#[test]
fn invalid_policy_is_not_also_missing_ttl() {
    let problems = problems_of(&[("POLICY", "delete-on-completion")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "TRAINJOB_GC_POLICY");
}

#[test]
fn only_a_missing_setting_has_no_value() {
    // The run defers problems without a value until the ConfigMap is read, so every other
    // problem must carry its value.
    let problems = problems_of(&[
        ("TTL", "1d"),
        ("RETRY_BACKOFF_MAX", "100ms"),
        ("NAMESPACES", "team-a"),
        ("EXCLUDE_NAMESPACES", "team-a"),
        ("POLICY", "delete_on_completion"),
    ]);
    assert_eq!(problems.len(), 3, "{problems:?}");
    for problem in &problems {
        assert!(problem.value.is_some(), "{problem}");
        assert!(problem.source.is_some(), "{problem}");
    }
}

#[test]
fn backoff_longer_than_default_max() {
    let problems = problems_of(&[("TTL", "1d"), ("RETRY_BACKOFF", "1m")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let message = problems[0].to_string();
    assert!(
        message.starts_with("TRAINJOB_GC_RETRY_BACKOFF=\"1m\""),
        "{message}"
    );
    assert!(message.contains("give 30s or less"), "{message}");
}

#[test]
fn max_shorter_than_default_backoff() {
    let problems = problems_of(&[("TTL", "1d"), ("RETRY_BACKOFF_MAX", "100ms")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let message = problems[0].to_string();
    assert!(
        message.starts_with("TRAINJOB_GC_RETRY_BACKOFF_MAX=\"100ms\""),
        "{message}"
    );
    assert!(message.contains("give 500ms or more"), "{message}");
}

#[test]
fn invalid_backoff_is_not_compared() {
    let problems = problems_of(&[
        ("TTL", "1d"),
        ("RETRY_BACKOFF", "soon"),
        ("RETRY_BACKOFF_MAX", "100ms"),
    ]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "TRAINJOB_GC_RETRY_BACKOFF");
}

#[test]
fn backoff_equal_to_max_is_accepted() {
    let settings = from_environment(&[
        ("TTL", "1d"),
        ("RETRY_BACKOFF", "2s"),
        ("RETRY_BACKOFF_MAX", "2s"),
    ])
    .unwrap();
    assert_eq!(settings.limits.retry_backoff, Duration::from_secs(2));
}

#[test]
fn namespace_both_listed_and_excluded() {
    let problems = problems_of(&[
        ("TTL", "1d"),
        ("NAMESPACES", "team-a,team-b"),
        ("EXCLUDE_NAMESPACES", "kube-system,team-b"),
    ]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let message = problems[0].to_string();
    assert!(
        message.starts_with("TRAINJOB_GC_EXCLUDE_NAMESPACES=\"kube-system,team-b\""),
        "{message}"
    );
    assert!(message.contains("excludes team-b"), "{message}");
}

#[test]
fn accepted_values_are_parsed() {
    let settings = from_environment(&[
        ("TTL", "1d"),
        ("MAX_TTL", "30d"),
        ("KEEP_LAST", "5"),
        ("INVALID_ANNOTATION", "policy"),
        ("INCLUDE", "managed-by, multikueue-copy,owned,gitops"),
        ("NAMESPACES", " team-a , team-b ,"),
        ("EXCLUDE_NAMESPACES", "kube-system"),
        ("LABEL_SELECTOR", " team=research,!keep "),
        ("PAGE_SIZE", "1000"),
        ("REPORT", " - "),
        ("LOG_FORMAT", "json"),
        ("LOG_LEVEL", "DEBUG"),
        ("QPS", "0.5"),
        ("BURST", "1"),
        ("CONCURRENCY", "256"),
        ("DEADLINE", "20m"),
        ("MAX_DELETIONS", "1000"),
        ("ABORT_ABOVE", "0"),
        ("REQUEST_TIMEOUT", "10s"),
        ("RETRY_LIMIT", "0"),
        ("RETRY_BUDGET", "20"),
        ("RETRY_BACKOFF", "1s"),
        ("RETRY_BACKOFF_MAX", "1m"),
        ("CLOCK_SKEW_WARN", "0s"),
    ])
    .unwrap();

    let policy = &settings.policy;
    assert_eq!(policy.max_ttl, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(policy.keep_last, 5);
    assert_eq!(policy.invalid_annotation, InvalidAnnotation::Policy);
    assert_eq!(
        policy.include,
        Include {
            managed_by: true,
            multikueue_copy: true,
            owned: true,
            gitops: true
        }
    );

    assert_eq!(settings.scope.namespaces, vec!["team-a", "team-b"]);
    assert_eq!(settings.scope.exclude_namespaces, vec!["kube-system"]);
    assert_eq!(
        settings.scope.label_selector.as_deref(),
        Some("team=research,!keep")
    );
    assert_eq!(settings.report.as_deref(), Some("-"));
    assert_eq!(settings.log_format, LogFormat::Json);
    assert_eq!(settings.log_level, tracing::Level::DEBUG);

    let limits = &settings.limits;
    assert_eq!(limits.page_size, 1000);
    assert_eq!(limits.qps, 0.5);
    assert_eq!(limits.burst, 1);
    assert_eq!(limits.concurrency, 256);
    assert_eq!(limits.deadline, Duration::from_secs(1200));
    assert_eq!(limits.max_deletions, Some(1000));
    assert_eq!(limits.abort_above, Some(0));
    assert_eq!(limits.request_timeout, Duration::from_secs(10));
    assert_eq!(limits.retry_limit, 0);
    assert_eq!(limits.retry_budget, 20);
    assert_eq!(limits.retry_backoff, Duration::from_secs(1));
    assert_eq!(limits.retry_backoff_max, Duration::from_secs(60));
    assert_eq!(limits.clock_skew_warn, Duration::ZERO);
}

/// Invalid values: the setting (without prefix), the value, and parts the message must contain,
/// at least one of them an accepted example or the accepted words.
const INVALID: &[(&str, &str, &[&str])] = &[
    ("TTL", "3600", &["has no unit", "3600s"]),
    ("INCLUDE", ",", &["lists nothing", "managed-by"]),
    ("TTL", "-5m", &["negative", "0s or more", "7d"]),
    ("TTL", "1x", &["unknown unit \"x\"", "90m, 36h or 7d"]),
    ("TTL", "10ay", &["unknown unit \"ay\"", "90m, 36h or 7d"]),
    ("TTL", " ", &["is blank", "such as 7d"]),
    ("TTL_FAILED", "7 days", &["no unit right after 7", "7d"]),
    ("TTL_SUCCEEDED", "1.5h", &["fraction", "1h 30m"]),
    (
        "MAX_TTL",
        "forever",
        &["is not a duration", "90m, 36h or 7d"],
    ),
    (
        "POLICY",
        "TTL",
        &["is not a policy", "ttl or delete_on_completion"],
    ),
    ("DRY_RUN", "yes", &["is not a boolean", "true or false"]),
    ("PAGE_SIZE", "0", &["from 1 to 10000", "for example 1000"]),
    ("PAGE_SIZE", "abc", &["from 1 to 10000", "for example 1000"]),
    ("QPS", "0", &["from 0.1 to 10000", "for example 100"]),
    ("QPS", "NaN", &["from 0.1 to 10000", "for example 100"]),
    ("QPS", "inf", &["from 0.1 to 10000", "for example 100"]),
    ("BURST", "-1", &["from 1 to 100000", "for example 200"]),
    ("CONCURRENCY", "0", &["from 1 to 256", "for example 16"]),
    ("CONCURRENCY", "1000", &["from 1 to 256", "for example 16"]),
    ("NAMESPACES", "Team_A", &["\"Team_A\"", "team-a,team-b"]),
    ("NAMESPACES", ",", &["lists no namespace", "team-a,team-b"]),
    (
        "EXCLUDE_NAMESPACES",
        "-prod",
        &["\"-prod\"", "team-a,team-b"],
    ),
    ("CONFIGMAP", "nameonly", &["namespace/name", CONFIGMAP_NAME]),
    ("CONFIGMAP", "a/b/c", &["namespace/name", CONFIGMAP_NAME]),
    ("CONFIGMAP", "/policy", &["namespace/name", CONFIGMAP_NAME]),
    (
        "CONFIGMAP",
        "Team/policy",
        &["namespace \"Team\"", CONFIGMAP_NAME],
    ),
    (
        "CONFIGMAP",
        "ns/Policy_1",
        &["ConfigMap \"Policy_1\"", CONFIGMAP_NAME],
    ),
    (
        "INCLUDE",
        "everything",
        &[
            "\"everything\"",
            "managed-by, multikueue-copy, owned, gitops",
        ],
    ),
    ("INVALID_ANNOTATION", "delete", &["keep or policy"]),
    (
        "LOG_FORMAT",
        "yaml",
        &["is not a log format", "text or json"],
    ),
    ("LOG_LEVEL", "loud", &["error, warn, info, debug or trace"]),
    ("LOG_LEVEL", "3", &["error, warn, info, debug or trace"]),
    ("DEADLINE", "0s", &["longer than 0s", "for example 20m"]),
    ("DEADLINE", "soon", &["is not a duration", "90m, 36h or 7d"]),
    (
        "REQUEST_TIMEOUT",
        "0s",
        &["longer than 0s", "for example 10s"],
    ),
    (
        "RETRY_BACKOFF",
        "1m",
        &["RETRY_BACKOFF_MAX (30s)", "30s or less"],
    ),
    (
        "RETRY_BACKOFF_MAX",
        "100ms",
        &["RETRY_BACKOFF (500ms)", "500ms or more"],
    ),
    ("KEEP_LAST", "-1", &["from 0 to 1000000", "for example 5"]),
    ("MAX_DELETIONS", "0", &["of 1 or more", "for example 1000"]),
    ("ABORT_ABOVE", "lots", &["of 0 or more", "for example 5000"]),
    ("CLOCK_SKEW_WARN", "5", &["has no unit", "5s"]),
    ("RETRY_LIMIT", "101", &["from 0 to 100", "for example 3"]),
    (
        "RETRY_BUDGET",
        "many",
        &["from 0 to 1000000", "for example 20"],
    ),
    ("REPORT", " ", &["is blank", "/tmp/audit.jsonl"]),
    ("LABEL_SELECTOR", "  ", &["is blank", "team=research"]),
];

#[test]
fn invalid_values_name_variable_value_and_fix() {
    assert!(INVALID.len() >= 30);
    let mut failures = Vec::new();
    for (name, value, parts) in INVALID {
        let mut pairs = vec![(*name, *value)];
        if !name.starts_with("TTL") {
            pairs.push(("TTL", "7d"));
        }
        let problems = problems_of(&pairs);
        let case = format!("{name}={value:?}");
        let [problem] = problems.as_slice() else {
            failures.push(format!("{case}: {} problems: {problems:?}", problems.len()));
            continue;
        };
        let text = problem.to_string();
        if problem.key != key(name) {
            failures.push(format!("{case}: reported on {}", problem.key));
        }
        if problem.value.as_deref() != Some(*value) {
            failures.push(format!("{case}: value {:?}", problem.value));
        }
        if !text.starts_with(&format!("{}={value:?} (from environment) ", key(name))) {
            failures.push(format!(
                "{case}: message does not start with the setting: {text}"
            ));
        }
        for part in *parts {
            if !text.contains(part) {
                failures.push(format!("{case}: {text:?} lacks {part:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = problems_of(&[
        ("TLL", "7d"),
        ("POLICY", "TTL"),
        ("PAGE_SIZE", "0"),
        ("QPS", "NaN"),
        ("LOG_FORMAT", "yaml"),
        ("DRY_RUN", "yes"),
        ("RETRY_BACKOFF", "1m"),
        ("NAMESPACES", "Team_A"),
    ]);
    let keys: Vec<&str> = problems
        .iter()
        .map(|problem| problem.key.as_str())
        .collect();
    for expected in [
        "TRAINJOB_GC_TLL",
        "TRAINJOB_GC_POLICY",
        "TRAINJOB_GC_PAGE_SIZE",
        "TRAINJOB_GC_QPS",
        "TRAINJOB_GC_LOG_FORMAT",
        "TRAINJOB_GC_DRY_RUN",
        "TRAINJOB_GC_RETRY_BACKOFF",
        "TRAINJOB_GC_NAMESPACES",
    ] {
        assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
    }
    assert_eq!(problems.len(), 8, "{keys:?}");
}

#[test]
fn config_error_lists_every_problem() {
    let (env, _) = environment(&[("TTL", "3600"), ("PAGE_SIZE", "0")]);
    let err = Settings::from_raw(&Merged::from_layers(&[&env])).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("invalid configuration (2 problems):\n  - "),
        "{text}"
    );
    assert!(text.contains("\n  - TRAINJOB_GC_TTL=\"3600\" (from environment) has no unit"));
    assert!(text.contains("\n  - TRAINJOB_GC_PAGE_SIZE=\"0\" (from environment) is not"));
}

#[test]
fn config_error_with_one_problem() {
    let err = from_environment(&[]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid configuration (1 problem):\n  - TRAINJOB_GC_TTL is missing"),
        "{err}"
    );
}

#[test]
fn max_ttl_below_the_policy_ttl_is_rejected() {
    let problems = problems_of(&[("TTL", "7d"), ("MAX_TTL", "1m")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "TRAINJOB_GC_MAX_TTL");
    assert!(
        problems[0]
            .message
            .contains("shorter than the policy's TTL"),
        "{}",
        problems[0]
    );
}
