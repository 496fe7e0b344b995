//! `ecosystem.config.js`, evaluated with node (v20 on the development machines).

use super::{at, cli_env, error_text, resolve, s, temp_dir, write};
use crate::ecosystem::program::which;
use crate::ecosystem::{StartOptions, resolve_start};
use std::collections::BTreeMap;

fn node_on_path() -> bool {
    which("node", cli_env().get("PATH").map(String::as_str)).is_some()
}

const CONFIG_JS: &str = r"
console.log('noise printed by the file');
module.exports = {
  apps: [{ name: 'web', script: 'app.js', env: { PORT: 3000 + 1, FROM_CLI: process.env.INHERITED } }],
};
";

#[test]
fn config_js_is_evaluated_with_node() {
    let (_keep, dir) = temp_dir();
    write(&dir, "app.js", "");
    write(&dir, "ecosystem.config.js", CONFIG_JS);
    let result = resolve(&dir, "ecosystem.config.js", &StartOptions::default());
    if !node_on_path() {
        assert!(error_text(result).contains("node is needed to read ecosystem.config.js"));
        return;
    }
    let app = &result.unwrap().apps[0];
    assert_eq!(app.name, "web");
    assert_eq!(app.argv, [s("node"), at(&dir, "app.js")]);
    assert_eq!(
        (app.env["PORT"].as_str(), app.env["FROM_CLI"].as_str()),
        ("3001", "from-cli")
    );
}

#[test]
fn bare_array_export_and_cjs() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(
        &dir,
        "ecosystem.cjs",
        "module.exports = [{ name: 'a', script: 'a.sh' }, { name: 'b', script: 'a.sh' }];\n",
    );
    let result = resolve(&dir, "ecosystem.cjs", &StartOptions::default());
    if !node_on_path() {
        assert!(error_text(result).contains("node is needed"));
        return;
    }
    let names: Vec<_> = result.unwrap().apps.into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn esm_config_and_load_errors() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(
        &dir,
        "app.config.mjs",
        "export default { apps: [{ name: 'm', script: 'a.sh' }] };\n",
    );
    if !node_on_path() {
        let result = resolve(&dir, "app.config.mjs", &StartOptions::default());
        assert!(error_text(result).contains("node is needed"));
        return;
    }
    assert_eq!(
        resolve(&dir, "app.config.mjs", &StartOptions::default())
            .unwrap()
            .apps[0]
            .name,
        "m"
    );
    write(&dir, "bad.config.js", "throw new Error('boom');\n");
    let error = error_text(resolve(&dir, "bad.config.js", &StartOptions::default()));
    assert!(
        error.starts_with("bad.config.js: node could not load it:") && error.contains("boom"),
        "{error}"
    );
}

#[test]
fn config_js_without_node_is_a_clear_error() {
    let (_keep, dir) = temp_dir();
    write(&dir, "ecosystem.config.js", CONFIG_JS);
    let env = BTreeMap::from([(s("PATH"), s("/nonexistent"))]);
    let error = format!(
        "{:#}",
        resolve_start("ecosystem.config.js", &StartOptions::default(), &env, &dir).unwrap_err()
    );
    assert!(
        error.starts_with("ecosystem.config.js: node is needed to read ecosystem.config.js"),
        "{error}"
    );
    assert!(
        error.contains("ecosystem.json or ecosystem.yaml"),
        "{error}"
    );
}
