//! The house keeps its shape (issue #5): `record/` is the ground floor and imports no other
//! module of the crate; no two top-level modules of `src/` import each other, directly or round
//! a longer loop; no file is over 500 lines and no function outside tests over 100.
//!
//! Read from the source text itself, so it needs no root and no build of anything: a `crate::X`
//! path outside a comment is an import of top-level module `X`, and a function's length is from
//! its `fn` line to the brace that closes its body (strings, chars and comments are skipped when
//! braces are counted). Test code, from a `#[cfg(test)]` line on, is left out of the lengths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 100;
/// Modules that may import nothing else of the crate.
const GROUND_FLOOR: &[&str] = &["record"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/drops/reader.rs` → `drops`); `None` for the crate
/// root (`lib.rs`, `main.rs`), which may import anything.
fn top_module(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(stem) => Some(stem.to_string()),
        None => Some(first.into_owned()),
    }
}

/// The source with comments, string and char literals blanked out (lines kept), so that
/// neither a `crate::x` in a doc comment nor a `{` in a format string counts.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: u8| out.push(if c == b'\n' { '\n' } else { ' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r' && matches!(next, Some(b'#') | Some(b'"')) && raw_start(b, i).is_some()
        {
            let (hashes, body) = raw_start(b, i).expect("checked");
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            out.push_str("r\"");
            i = body;
            while i < b.len() && !b[i..].starts_with(&close) {
                blank(&mut out, b[i]);
                i += 1;
            }
            out.push('"');
            i += close.len();
        } else if c == b'"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == b'\'' && char_literal_len(b, i).is_some() {
            let n = char_literal_len(b, i).expect("checked");
            out.push_str("' '");
            i += n;
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

/// `r"…"` or `r#"…"#` starting at `i` (and not the end of an identifier like `for`): the number
/// of hashes and where the body starts.
fn raw_start(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'#') {
        j += 1;
    }
    (b.get(j) == Some(&b'"')).then_some((j - i - 1, j + 1))
}

/// The length of a char literal at `i` (`'x'`, `'\n'`, `'\u{7b}'`), or `None` for a lifetime.
fn char_literal_len(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i + 1) == Some(&b'\\') {
        let end = b[i + 2..].iter().position(|&c| c == b'\'')?;
        return Some(end + 3);
    }
    let s = std::str::from_utf8(&b[i + 1..(i + 6).min(b.len())])
        .ok()
        .or_else(|| {
            // A multi-byte char cut at the window's edge: take the valid prefix.
            (1..5)
                .rev()
                .find_map(|n| std::str::from_utf8(b.get(i + 1..i + 1 + n)?).ok())
        })?;
    let ch = s.chars().next()?;
    let len = ch.len_utf8();
    (b.get(i + 1 + len) == Some(&b'\'')).then_some(len + 2)
}

/// Every top-level module named in a `crate::` path in `code`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        let tail = &rest[at + "crate::".len()..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `$crate::` and `backlog_lab::crate` are not ours; `crate::{a, b}` names several.
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            if name.is_empty() && tail.starts_with('{') {
                let group = &tail[1..tail.find('}').unwrap_or(tail.len())];
                found.extend(group.split(',').filter_map(|item| {
                    let n: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    (!n.is_empty()).then_some(n)
                }));
            } else if !name.is_empty() {
                found.insert(name);
            }
        }
        rest = tail;
    }
    found
}

/// Functions of `code` longer than `max` lines: (name, first line, length).
fn long_functions(code: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.trim() == "#[cfg(test)]")
        .unwrap_or(lines.len());
    let mut out = Vec::new();
    for (n, line) in lines[..end].iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let mut depth = 0i64;
        let mut opened = false;
        'body: for (m, l) in lines[n..end].iter().enumerate() {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened => break 'body, // a declaration without a body
                    _ => {}
                }
                if opened && depth == 0 {
                    if m + 1 > max {
                        out.push((name.clone(), n + 1, m + 1));
                    }
                    break 'body;
                }
            }
        }
    }
    out
}

/// The name of the function a line declares, if it declares one.
fn fn_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let modifier = w.starts_with("pub")
            || matches!(
                w,
                "async" | "const" | "unsafe" | "extern" | "\"C\"" | "default"
            );
        if w == "fn" {
            let name: String = words
                .next()?
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            return (!name.is_empty()).then_some(name);
        }
        if !modifier {
            return None;
        }
    }
    None
}

/// A loop in `graph`, as the modules round it, if there is one.
fn find_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

struct House {
    /// Top-level module → the other top-level modules it imports.
    graph: BTreeMap<String, BTreeSet<String>>,
    /// Which file brought each import: (from, to) → files.
    why: BTreeMap<(String, String), BTreeSet<String>>,
    long_files: Vec<(String, usize)>,
    long_functions: Vec<(String, String, usize, usize)>,
}

fn read_house() -> House {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut house = House {
        graph: BTreeMap::new(),
        why: BTreeMap::new(),
        long_files: Vec::new(),
        long_functions: Vec::new(),
    };
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        let code = code_only(&text);
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            house.long_files.push((rel.clone(), lines));
        }
        for (name, at, len) in long_functions(&code, MAX_FN_LINES) {
            house.long_functions.push((rel.clone(), name, at, len));
        }
        let Some(module) = top_module(&root, &file) else {
            continue;
        };
        let entry = house.graph.entry(module.clone()).or_default();
        for to in imports(&code) {
            if to != module {
                entry.insert(to.clone());
                house
                    .why
                    .entry((module.clone(), to))
                    .or_default()
                    .insert(rel.clone());
            }
        }
    }
    house
}

#[test]
fn the_ground_floor_imports_nothing_of_the_crate() {
    let house = read_house();
    for floor in GROUND_FLOOR {
        let up = house.graph.get(*floor).cloned().unwrap_or_default();
        let named: Vec<String> = up
            .iter()
            .map(|to| {
                format!(
                    "{to} (in {:?})",
                    house.why[&(floor.to_string(), to.clone())]
                )
            })
            .collect();
        assert!(
            up.is_empty(),
            "src/{floor}/ is the ground floor: plain result types that import nothing else of \
             the crate, so that every producer can fill them. It imports: {}",
            named.join(", ")
        );
    }
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let house = read_house();
    if let Some(cycle) = find_loop(&house.graph) {
        let arrows: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                format!(
                    "{} -> {} (in {:?})",
                    w[0],
                    w[1],
                    house.why[&(w[0].clone(), w[1].clone())]
                )
            })
            .collect();
        panic!(
            "an import loop between top-level modules of src/: {}. Move the shared type down \
             (to record/ if it is a result) so the arrows run one way",
            arrows.join(", ")
        );
    }
}

#[test]
fn no_file_over_500_lines_and_no_function_over_100() {
    let house = read_house();
    assert!(
        house.long_files.is_empty(),
        "files over {MAX_FILE_LINES} lines: {:?}; split them into pieces with names",
        house.long_files
    );
    assert!(
        house.long_functions.is_empty(),
        "functions over {MAX_FN_LINES} lines (file, name, line, length): {:?}",
        house.long_functions
    );
}

/// The reader itself: a loop is found, comments and strings do not count, a long function is.
#[test]
fn the_house_reader_sees_loops_imports_and_lengths() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(
        find_loop(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        find_loop(&graph(&[("a", "b"), ("a", "c"), ("b", "c")])),
        None
    );

    let code = code_only(
        "use crate::record::Outcome;\n// crate::app in a comment\n/// [`crate::plots`]\n\
         let s = \"crate::report {\"; let c = '{';\nuse crate::{topo, counters::X};\n\
         let r = r#\"crate::cli \"# ;\n",
    );
    assert_eq!(
        imports(&code),
        ["counters", "record", "topo"].map(String::from).into()
    );

    let mut body = String::from("pub fn long() {\n");
    for _ in 0..100 {
        body.push_str("    let x = format!(\"{{\");\n");
    }
    body.push_str("}\nfn short() -> u8 { 1 }\n#[cfg(test)]\nfn in_tests() {\n");
    body.push_str(&"\n".repeat(200));
    body.push_str("}\n");
    assert_eq!(
        long_functions(&code_only(&body), 100),
        vec![("long".to_string(), 1, 102)]
    );
}
