//! The README's settings table and config.example.env list every setting the program reads.

use trainjob_gc::config::settings::SETTINGS;

fn read(path: &str) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + path).unwrap()
}

#[test]
fn readme_table_lists_every_setting() {
    let readme = read("README.md");
    for spec in SETTINGS {
        let row = format!("| `TRAINJOB_GC_{}` |", spec.name);
        assert!(
            readme.contains(&row),
            "README.md has no table row for TRAINJOB_GC_{}",
            spec.name
        );
    }
}

#[test]
fn example_env_lists_every_setting_with_its_default() {
    let example = read("config.example.env");
    for spec in SETTINGS {
        let line = example
            .lines()
            .find(|line| line.starts_with(&format!("TRAINJOB_GC_{}=", spec.name)))
            .unwrap_or_else(|| {
                panic!(
                    "config.example.env has no line for TRAINJOB_GC_{}",
                    spec.name
                )
            });
        if let Some(default) = spec.default {
            assert_eq!(
                line,
                format!("TRAINJOB_GC_{}={default}", spec.name),
                "default of {}",
                spec.name
            );
        }
    }
}

#[test]
fn readme_exit_codes_match_the_program() {
    let readme = read("README.md");
    for code in 0..=10 {
        assert!(
            readme.contains(&format!("| {code} |")),
            "README.md has no row for exit code {code}"
        );
    }
    assert!(
        !readme.contains("| 11 |"),
        "README.md has a row for exit code 11, which the program never uses"
    );
}
