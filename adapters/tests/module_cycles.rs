//! No import cycle between the modules of `clairon-adapters`: every `use crate::…`,
//! `use super::…`, `use self::…` (and a path into a child module) of every `src/**/*.rs`,
//! outside `#[cfg(test)]` modules and comments, is an edge from the file's module to the
//! deepest module it names; the graph must have no cycle. A cycle fails the test, named
//! module by module. Reading the sources needs nothing but the standard library, so this runs
//! with every `cargo test --workspace` (and so in CI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`crate::http::api`) → the modules it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source folder") {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `src/http/api/mod.rs` → `crate::http::api`; `src/lib.rs` → `crate`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_owned());
    }
    std::iter::once("crate".to_owned())
        .chain(parts)
        .collect::<Vec<_>>()
        .join("::")
}

/// The source without comments, string literals' contents, and `#[cfg(test)]` modules.
fn code_of(source: &str) -> String {
    // Comments and strings first (a `"//"` inside a string is not a comment).
    let mut out = String::with_capacity(source.len());
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && raw_string_at(&chars, i) {
            let mut hashes = 0;
            i += 1;
            while chars.get(i) == Some(&'#') {
                hashes += 1;
                i += 1;
            }
            i += 1; // the opening quote
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && is_char_literal(&chars, i) {
            // '"' or '{' would confuse the rest: skip the literal.
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    strip_test_modules(&out)
}

fn raw_string_at(chars: &[char], i: usize) -> bool {
    let before_ok = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    before_ok && chars.get(j) == Some(&'"')
}

fn is_char_literal(chars: &[char], i: usize) -> bool {
    // 'a', '\n', '\'' — not a lifetime ('a without a closing quote right after).
    matches!(
        (chars.get(i + 1), chars.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

/// Removes every `#[cfg(test)]` item that is a `mod … { … }` block.
fn strip_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let is_mod = trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ");
        match (is_mod, trimmed.find('{'), trimmed.find(';')) {
            (true, Some(open), semi) if semi.is_none_or(|s| s > open) => {
                let mut depth = 0usize;
                let mut end = trimmed.len();
                for (k, ch) in trimmed.char_indices().skip(open) {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &trimmed[end..];
            }
            _ => {
                out.push_str("#[cfg(test)]");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The paths a `use` tree names, each as its segments: `a::{b, c::{d, self}}` →
/// `a::b`, `a::c::d`, `a::c`.
fn expand_use_tree(tree: &str) -> Vec<Vec<String>> {
    fn parse(tree: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        if tree.is_empty() {
            return;
        }
        if let Some(open) = tree.find('{') {
            let head: Vec<String> = segments(&tree[..open]);
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let mut base = prefix.to_vec();
            base.extend(head);
            for part in split_top_level(inner) {
                parse(&part, &base, out);
            }
        } else {
            let path = tree.split(" as ").next().unwrap_or(tree);
            let mut full = prefix.to_vec();
            for segment in segments(path) {
                if segment == "self" && !full.is_empty() {
                    continue;
                }
                full.push(segment);
            }
            out.push(full);
        }
    }
    let mut out = Vec::new();
    parse(tree, &[], &mut out);
    out
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn split_top_level(inner: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for ch in inner.chars() {
        match ch {
            '{' => {
                depth += 1;
                current.push(ch);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                current.push(ch);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    parts.push(current);
    parts
}

/// `path` (as written in `module`) as an absolute module path, if it starts with `crate`,
/// `super`, `self` or one of `children` (the child modules `module` declares).
fn absolute(module: &str, path: &[String], children: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut here: Vec<String> = module.split("::").map(str::to_owned).collect();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            here = vec!["crate".to_owned()];
            rest = &rest[1..];
        }
        Some("super") | Some("self") => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        here.pop()?;
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        Some(first) if children.contains(first) => {}
        _ => return None,
    }
    here.extend(rest.iter().cloned());
    Some(here)
}

/// The deepest known module `path` lies in.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// Every path a module's code names: `use` trees, and inline `crate::…`/`super::…`/
/// `self::…`/`child::…` paths.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut without_uses = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        without_uses.push_str(&rest[..at]);
        let after = &rest[at..];
        let end = after.find(';').unwrap_or(after.len());
        let tree = after[..end].trim_start_matches("use").trim();
        paths.extend(expand_use_tree(tree));
        rest = &after[(end + 1).min(after.len())..];
    }
    without_uses.push_str(rest);
    // Inline paths: identifier runs joined by `::`.
    let chars: Vec<char> = without_uses.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = (chars[i].is_alphabetic() || chars[i] == '_')
            && (i == 0
                || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':'));
        if !starts {
            i += 1;
            continue;
        }
        let mut path = Vec::new();
        let mut j = i;
        loop {
            let begin = j;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if begin == j {
                break;
            }
            path.push(chars[begin..j].iter().collect::<String>());
            if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
                j += 2;
            } else {
                break;
            }
        }
        if path.len() > 1 {
            paths.push(path);
        }
        i = j.max(i + 1);
    }
    paths
}

/// Where the next `use` item starts (`use …;`, `pub use …;`, `pub(crate) use …;`).
fn find_use(code: &str) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(found) = code[from..].find("use ") {
        let at = from + found;
        let boundary = at == 0
            || matches!(
                bytes[at - 1],
                b' ' | b'\n' | b'\t' | b';' | b'{' | b'}' | b')'
            );
        if boundary {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// Child modules `code` declares (`mod x;`, `pub mod x;`, `pub(crate) mod x;`).
fn declared_children(code: &str) -> BTreeSet<String> {
    code.split(';')
        .filter_map(|item| {
            let words: Vec<&str> = item.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "mod")?;
            (at + 2 == words.len()).then(|| words[at + 1].to_owned())
        })
        .collect()
}

/// Whether `target` is `module` or one of its descendants: a parent owns its children (its
/// `mod` items already depend on them), so its `pub use child::…` re-exports and its calls
/// into them are not edges of the graph; a child's imports from its parent are.
fn owns(module: &str, target: &str) -> bool {
    target == module
        || target
            .strip_prefix(module)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// The module graph of the crate whose sources are in `src`.
fn graph_of(src: &Path) -> Graph {
    let files: Vec<(String, String)> = rust_files(src)
        .into_iter()
        .map(|file| {
            let source = std::fs::read_to_string(&file).expect("readable source");
            (module_of(src, &file), code_of(&source))
        })
        .collect();
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph = Graph::new();
    for (module, code) in &files {
        let children = declared_children(code);
        let edges = graph.entry(module.clone()).or_default();
        for path in paths_in(code) {
            let Some(target) =
                absolute(module, &path, &children).and_then(|full| resolve(&full, &modules))
            else {
                continue;
            };
            if !owns(module, &target) {
                edges.insert(target);
            }
        }
    }
    graph
}

/// A cycle of `graph`, as the modules along it (the first repeated at the end), if any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = stack.iter().position(|m| m == next).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, graph, marks, stack) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node.as_str()).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

/// The HTTP adapter's shared pieces: they import no route, page or middleware module, only
/// each other.
const HTTP_SHARED: &[&str] = &[
    "crate::http::problem",
    "crate::http::extract",
    "crate::http::schema",
    "crate::http::credentials",
    "crate::http::state",
];

#[test]
fn the_http_layers_point_one_way() {
    let graph = graph_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let shared = |m: &str| {
        HTTP_SHARED
            .iter()
            .any(|s| m == *s || m.starts_with(&format!("{s}::")))
    };
    for (module, edges) in &graph {
        assert!(
            !edges.contains("crate::http"),
            "{module} imports `crate::http`: the root only wires routes; import the module that defines the item"
        );
        assert!(
            !edges.contains("crate::http::openapi"),
            "{module} imports `crate::http::openapi`: only `http::configure` mounts the document"
        );
        if shared(module) {
            for target in edges.iter().filter(|t| t.starts_with("crate::http::")) {
                assert!(
                    shared(target),
                    "{module} is shared by the routes and must not import {target}"
                );
            }
        }
        if module.starts_with("crate::persistence") {
            assert!(
                !edges.iter().any(|t| t.starts_with("crate::http")),
                "{module} imports the HTTP adapter: ports belong to the application"
            );
        }
    }
}

/// Every group of modules that import each other in a circle (strongly connected components
/// of more than one module), each sorted.
fn tangles(graph: &Graph) -> Vec<Vec<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(node) = todo.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|n| (n, reach(n))).collect();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for node in graph.keys() {
        if groups.iter().any(|g| g.contains(node)) {
            continue;
        }
        let group: Vec<String> = graph
            .keys()
            .filter(|other| {
                *other == node
                    || (reachable[node].contains(*other) && reachable[*other].contains(node))
            })
            .cloned()
            .collect();
        if group.len() > 1 {
            groups.push(group);
        }
    }
    groups
}

#[test]
fn the_adapters_crate_has_no_import_cycle_between_its_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph_of(&src);
    assert!(
        graph.contains_key("crate::http::api::recipients") && graph.len() > 30,
        "the sources were read: {:?}",
        graph.keys().collect::<Vec<_>>()
    );
    if let Some(cycle) = find_cycle(&graph) {
        let groups: Vec<String> = tangles(&graph)
            .iter()
            .map(|g| format!("  {{{}}}", g.join(", ")))
            .collect();
        panic!(
            "import cycle between modules: {}\nmodules importing each other in circles:\n{}",
            cycle.join(" -> "),
            groups.join("\n")
        );
    }
}

#[test]
fn the_cycle_finder_names_a_cycle_and_passes_a_graph_without_one() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (from, to) in edges {
            g.entry((*from).to_owned())
                .or_default()
                .insert((*to).to_owned());
            g.entry((*to).to_owned()).or_default();
        }
        g
    };
    let cyclic = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("a", "d")]);
    assert_eq!(
        find_cycle(&cyclic),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let acyclic = graph(&[("a", "b"), ("b", "c"), ("a", "c"), ("d", "a")]);
    assert_eq!(find_cycle(&acyclic), None);
}

#[test]
fn imports_are_read_from_use_trees_and_paths_but_not_from_tests_comments_or_strings() {
    let dir = std::env::temp_dir().join(format!("clairon-cycles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("outer")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod outer;\npub mod other;\n").unwrap();
    std::fs::write(
        dir.join("outer/mod.rs"),
        "pub mod inner;\n// use crate::other;\nconst S: &str = \"crate::other::X\";\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("outer/inner.rs"),
        "use crate::{other::{self, Thing}};\n#[cfg(test)]\nmod tests {\n    use super::super::*;\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("other.rs"),
        "pub fn f() { super::outer::inner::g() }\n",
    )
    .unwrap();

    let g = graph_of(&dir);
    let edges = |m: &str| g[m].iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        edges("crate::outer::inner"),
        vec!["crate::other".to_owned()]
    );
    assert!(
        edges("crate::outer").is_empty(),
        "comments and strings name nothing"
    );
    assert_eq!(
        edges("crate::other"),
        vec!["crate::outer::inner".to_owned()]
    );
    assert_eq!(
        find_cycle(&g),
        Some(vec![
            "crate::other".to_owned(),
            "crate::outer::inner".to_owned(),
            "crate::other".to_owned()
        ])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
