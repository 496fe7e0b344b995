//! From `script` to `argv`: a file (interpreter by extension), a command string (`sh -c`),
//! or a command found on PATH.

use super::draft::Draft;
use anyhow::{Context as _, bail};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

pub(super) struct Program {
    pub argv: Vec<String>,
    /// The app name when none was given.
    pub default_name: String,
    /// The script runs under node (by its extension or the interpreter given).
    pub node: bool,
}

pub(super) fn resolve(
    draft: &Draft,
    path_var: Option<&str>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Program> {
    if let Some(file) = find_file(draft)? {
        return file_program(draft, &file, path_var, warnings);
    }
    if draft.script.chars().any(char::is_whitespace) {
        return Ok(shell_program(draft, warnings));
    }
    if !draft.script.contains('/')
        && let Some(found) = which(&draft.script, path_var)
    {
        let mut argv = interpreter_argv(draft, path_var, warnings)?.unwrap_or_default();
        let node = is_node(&argv);
        argv.push(path_string(&found)?);
        argv.extend(draft.args.iter().cloned());
        return Ok(Program {
            argv,
            default_name: draft.script.clone(),
            node,
        });
    }
    bail!(draft.not_found())
}

/// The first existing file named `script` in the draft's base directories, made absolute
/// (its directory canonicalized, the file itself kept, since it may be a meaningful symlink).
fn find_file(draft: &Draft) -> anyhow::Result<Option<PathBuf>> {
    let Some(path) = draft
        .script_bases
        .iter()
        .map(|base| base.join(&draft.script))
        .find(|p| p.is_file())
    else {
        return Ok(None);
    };
    let (Some(parent), Some(file_name)) = (path.parent(), path.file_name()) else {
        return Ok(Some(path));
    };
    let parent = parent
        .canonicalize()
        .with_context(|| format!("resolving {}", parent.display()))?;
    Ok(Some(parent.join(file_name)))
}

fn file_program(
    draft: &Draft,
    file: &Path,
    path_var: Option<&str>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Program> {
    let path = path_string(file)?;
    let default_name = file
        .file_stem()
        .map_or_else(|| path.clone(), |s| s.to_string_lossy().into_owned());
    let mut argv = match interpreter_argv(draft, path_var, warnings)? {
        Some(argv) => argv,
        None if draft.interpreter.is_none() => by_extension(file)
            .map(|i| vec![i.to_owned()])
            .unwrap_or_default(),
        None => Vec::new(),
    };
    if argv.is_empty() && !is_executable(file) {
        bail!(
            "{path} is not executable; pass --interpreter (e.g. --interpreter bash), or make it executable"
        );
    }
    let node = is_node(&argv);
    argv.push(path);
    argv.extend(draft.args.iter().cloned());
    Ok(Program {
        argv,
        default_name,
        node,
    })
}

/// The interpreter's program is node (`node`, `/usr/bin/node`, Debian's `nodejs`).
fn is_node(interpreter: &[String]) -> bool {
    interpreter
        .first()
        .and_then(|program| Path::new(program).file_name())
        .is_some_and(|name| name == "node" || name == "nodejs")
}

/// PM2's interpreters by extension; `None` = run the file directly.
fn by_extension(file: &Path) -> Option<&'static str> {
    match file.extension()?.to_str()? {
        "js" | "mjs" | "cjs" => Some("node"),
        "py" => Some("python3"),
        "sh" => Some("bash"),
        _ => None,
    }
}

/// The explicit interpreter and its arguments; `None` when there is none or it is `none`.
fn interpreter_argv(
    draft: &Draft,
    path_var: Option<&str>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Option<Vec<String>>> {
    let Some(text) = draft.interpreter.as_deref() else {
        return Ok(None);
    };
    if text.trim() == "none" {
        return Ok(None);
    }
    let mut argv = split_words(text).map_err(|e| anyhow::anyhow!("interpreter {text:?}: {e}"))?;
    let Some(program) = argv.first() else {
        bail!("the interpreter is empty (use \"none\" to run the file directly)")
    };
    let known = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        which(program, path_var).is_some()
    };
    if !known {
        warnings.push(format!("interpreter {program:?} was not found on PATH"));
    }
    argv.extend(draft.interpreter_args.iter().cloned());
    Ok(Some(argv))
}

fn shell_program(draft: &Draft, warnings: &mut Vec<String>) -> Program {
    if !draft.args.is_empty() {
        warnings.push(format!(
            "arguments {:?} ignored: a command string runs as `sh -c`; put them in the string",
            draft.args
        ));
    }
    if draft.interpreter.is_some() {
        warnings.push("the interpreter is ignored: a command string runs as `sh -c`".to_owned());
    }
    let first = draft.script.split_whitespace().next().unwrap_or_default();
    let default_name = Path::new(first)
        .file_name()
        .map_or_else(|| first.to_owned(), |s| s.to_string_lossy().into_owned());
    Program {
        argv: vec!["sh".into(), "-c".into(), draft.script.clone()],
        default_name,
        node: false,
    }
}

/// The executable file `name` in one of PATH's (absolute) directories.
pub(super) fn which(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    path_var?
        .split(':')
        .filter(|dir| Path::new(dir).is_absolute())
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file() && is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

fn path_string(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}

/// Splits like a shell: whitespace separates words, '…' and "…" quote, \ escapes outside quotes.
pub(super) fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' | '"' => read_quoted(&mut chars, c, word.get_or_insert_with(String::new))?,
            '\\' => word
                .get_or_insert_with(String::new)
                .push(chars.next().unwrap_or('\\')),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

fn read_quoted(
    chars: &mut std::str::Chars<'_>,
    quote: char,
    word: &mut String,
) -> Result<(), String> {
    for c in chars.by_ref() {
        if c == quote {
            return Ok(());
        }
        word.push(c);
    }
    Err(format!("unclosed {quote} quote"))
}
