//! `clairon templates export DIR` and `clairon templates check [DIR]`, run as the binary.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

/// `clairon templates ARGS` with no `CLAIRON_*` variable but `vars`.
fn templates(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clairon"));
    command.arg("templates").args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("CLAIRON_") {
            command.env_remove(name);
        }
    }
    command
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn export_into(dir: &Path) {
    let exported = templates(&["export", &dir.display().to_string()], &[]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
}

#[test]
fn export_writes_every_built_in_template_and_its_readme_which_then_check_clean() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("my-templates");

    // Act
    let exported = templates(&["export", &out.display().to_string()], &[]);
    let checked = templates(&["check", &out.display().to_string()], &[]);

    // Assert
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    for name in [
        "README.md",
        "_layouts/email.html",
        "fr/planning.assigned/email.html",
        "en/_macros/planning.tera",
        "en/test/telegram.html",
    ] {
        assert_eq!(
            fs::read(out.join(name)).ok(),
            fs::read(repository.join(name)).ok(),
            "{name} is written as in templates/"
        );
    }
    assert!(
        checked.status.success(),
        "the exported set checks clean: {}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
}

#[test]
fn export_refuses_to_overwrite_an_edited_template_without_force() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    export_into(dir.path());
    let edited = dir.path().join("fr/custom/email.subject.txt");
    fs::write(&edited, "Édité : {{ notification.title -}}").unwrap();

    // Act
    let again = templates(&["export", &dir.path().display().to_string()], &[]);

    // Assert
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        fs::read_to_string(&edited).unwrap(),
        "Édité : {{ notification.title -}}",
        "the edit is kept"
    );
}

#[test]
fn check_prints_each_problem_with_file_and_line_and_fails() {
    // Arrange: two broken overrides; everything else is built in.
    let dir = tempfile::tempdir().unwrap();
    let syntax = dir.path().join("fr/custom/email.txt");
    let variable = dir.path().join("en/test/in_app.body.txt");
    for (path, text) in [
        (&syntax, "Bonjour\n{% if notification.title %}\n"),
        (&variable, "Line one\n{{ notification.nowhere }}\n"),
    ] {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    // Act
    let checked = templates(&["check", &dir.path().display().to_string()], &[]);

    // Assert: a syntax error stops the check before rendering, so only it is shown.
    let stdout = text(&checked.stdout);
    assert_eq!(
        checked.status.code(),
        Some(1),
        "{stdout}{}",
        text(&checked.stderr)
    );
    assert!(
        stdout.contains(&format!("{}:3: syntax error", syntax.display())),
        "the syntax error's file and line: {stdout}"
    );

    // Arrange, Act: the syntax fixed, the unknown variable shows.
    fs::write(&syntax, "Bonjour\n").unwrap();
    let checked = templates(&["check", &dir.path().display().to_string()], &[]);

    // Assert
    let stdout = text(&checked.stdout);
    assert_eq!(checked.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("{}:2: ", variable.display()))
            && stdout.contains("notification.nowhere"),
        "the unknown variable's file and line: {stdout}"
    );
}

#[test]
fn check_without_a_directory_checks_clairon_templates_dir() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("fr/test/telegram.html");
    fs::create_dir_all(broken.parent().unwrap()).unwrap();
    fs::write(&broken, "<b>Test</b>\n<br>\n").unwrap();
    let dir = dir.path().display().to_string();

    // Act
    let with_variable = templates(&["check"], &[("CLAIRON_TEMPLATES_DIR", &dir)]);
    let built_in = templates(&["check"], &[]);

    // Assert
    assert_eq!(
        with_variable.status.code(),
        Some(1),
        "CLAIRON_TEMPLATES_DIR's broken file is found: {}",
        text(&with_variable.stdout)
    );
    assert!(
        text(&with_variable.stdout).contains(&format!("{}:2:", broken.display())),
        "{}",
        text(&with_variable.stdout)
    );
    assert!(
        built_in.status.success(),
        "the built-in set alone is fine: {}",
        text(&built_in.stdout)
    );
}
