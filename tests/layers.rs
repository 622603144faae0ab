//! The module layers (issue 12): modules form layers with no cycles, bottom to top
//! core types → loading → stages → engine → outcome → front ends, and clap stays in `cli`.
//!
//! The graph is read from the sources: every `crate::…` and `super::…` path of every file under
//! `src/` is resolved to the module it names. Edges between a module and its own sub-modules are
//! not counted (a parent declares its children); every other edge is lifted to the two sibling
//! modules it connects, and siblings must not import each other, directly or round a loop.
//! Run with `--nocapture` to print the top-level graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, lowest layer first. A module may import only modules listed before it.
/// A new top-level module must be placed here, in its layer.
const LAYERS: &[&str] = &[
    // core types
    "fhirpath",
    "dates",
    "finding",
    "site",
    // loading: sources, file loaders, the one LoadError
    "load",
    // the stages
    "parse",
    "context",
    "terminology",
    "profile",
    "rules",
    // the one engine service
    "engine",
    // answers
    "outcome",
    // the explanation of decisions ($explain), written from the engine's trace
    "explain",
    // the consult record (issue 15)
    "store",
    // security: tokens, keys, TLS (issue 17), under the HTTP front end
    "auth",
    // front ends
    "http",
    "cli",
];

/// The front ends: nothing else may import them.
const FRONT_ENDS: &[&str] = &["http", "cli"];

type ModPath = Vec<String>;

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `[a, b]`, `src/a/mod.rs` → `[a]`; `None` for the crate roots.
fn module_of(file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src()).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    if parts.is_empty() || parts == ["lib"] || parts == ["main"] {
        return None;
    }
    Some(parts)
}

/// Identifiers following `::` from `rest` (`::a::b{` stops at the brace), and those of a
/// `::{a, b::c}` group (first identifier of each item).
fn path_tails(rest: &str) -> Vec<Vec<String>> {
    let mut steps = Vec::new();
    let mut s = rest;
    while let Some(after) = s.strip_prefix("::") {
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            return inner
                .split(',')
                .map(|item| {
                    let mut v = steps.clone();
                    v.extend(
                        item.trim()
                            .split("::")
                            .map(|x| x.trim().to_string())
                            .filter(|x| !x.is_empty() && x.chars().all(is_ident)),
                    );
                    v
                })
                .collect();
        }
        let ident: String = after.chars().take_while(|c| is_ident(*c)).collect();
        if ident.is_empty() {
            break;
        }
        s = &after[ident.len()..];
        steps.push(ident);
    }
    vec![steps]
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every module the file at `module` refers to by a `crate::` or `super::` path.
fn references(module: &ModPath, text: &str, modules: &BTreeSet<ModPath>) -> BTreeSet<ModPath> {
    let mut out = BTreeSet::new();
    let mut in_tests = false;
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        if code.starts_with("mod tests") {
            // `super` inside the file's test module is the file's own module.
            in_tests = true;
        }
        for (i, _) in code
            .match_indices("crate::")
            .chain(code.match_indices("super::"))
        {
            if i > 0 && code[..i].chars().next_back().is_some_and(is_ident) {
                continue;
            }
            let (mut base, mut rest): (ModPath, &str) = if code[i..].starts_with("crate") {
                (Vec::new(), &code[i + "crate".len()..])
            } else {
                let mut base = module.clone();
                if !in_tests {
                    base.pop();
                }
                (base, &code[i + "super".len()..])
            };
            while let Some(r) = rest.strip_prefix("::super") {
                base.pop();
                rest = r;
            }
            for tail in path_tails(rest) {
                let mut target = base.clone();
                for step in tail {
                    let mut next = target.clone();
                    next.push(step);
                    if modules.contains(&next) {
                        target = next;
                    } else {
                        break;
                    }
                }
                if !target.is_empty() && &target != module {
                    out.insert(target);
                }
            }
        }
    }
    out
}

/// Edges between siblings: for each parent module (the crate root is `[]`), child → child.
type SiblingGraph = BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>>;

struct Graph {
    siblings: SiblingGraph,
    /// The raw edges, file module → module referred to, for messages.
    raw: Vec<(ModPath, ModPath)>,
}

fn graph() -> Graph {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<ModPath> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut siblings = SiblingGraph::new();
    let mut raw = Vec::new();
    for file in &files {
        let Some(from) = module_of(file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable");
        for to in references(&from, &text, &modules) {
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // a module and its own sub-module
            }
            siblings
                .entry(from[..common].to_vec())
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .insert(to[common].clone());
            raw.push((from.clone(), to));
        }
    }
    Graph { siblings, raw }
}

fn name(p: &[String]) -> String {
    if p.is_empty() {
        "crate".into()
    } else {
        p.join("::")
    }
}

/// A loop among `edges`, if there is one, as the modules round it.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let start = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node) {
            if let Some(c) = visit(node, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// Which files make the edge `from` → `to` between siblings (for the failure message).
fn culprits(g: &Graph, parent: &[String], from: &str, to: &str) -> Vec<String> {
    g.raw
        .iter()
        .filter(|(a, b)| {
            a.len() > parent.len()
                && b.len() > parent.len()
                && a.starts_with(parent)
                && b.starts_with(parent)
                && a[parent.len()] == from
                && b[parent.len()] == to
        })
        .map(|(a, b)| format!("{} uses {}", name(a), name(b)))
        .collect()
}

#[test]
fn no_two_modules_import_each_other() {
    let g = graph();
    let mut problems = Vec::new();
    for (parent, edges) in &g.siblings {
        if let Some(cycle) = find_cycle(edges) {
            let why: Vec<String> = cycle
                .windows(2)
                .flat_map(|w| culprits(&g, parent, &w[0], &w[1]))
                .collect();
            problems.push(format!(
                "import cycle in {}: {} ({})",
                name(parent),
                cycle.join(" → "),
                why.join("; ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let g = graph();
    let top = g.siblings.get(&Vec::new()).cloned().unwrap_or_default();
    println!("module graph (top level, module → modules it imports):");
    for (from, tos) in &top {
        println!(
            "  {from} → {}",
            tos.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut problems = Vec::new();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for m in files.iter().filter_map(|f| module_of(f)) {
        if rank(&m[0]).is_none() {
            problems.push(format!(
                "module {} is in no layer: add it to LAYERS in tests/layers.rs",
                m[0]
            ));
        }
    }
    for (from, tos) in &top {
        for to in tos {
            let (Some(a), Some(b)) = (rank(from), rank(to)) else {
                continue;
            };
            if FRONT_ENDS.contains(&to.as_str()) && !FRONT_ENDS.contains(&from.as_str()) {
                problems.push(format!(
                    "{from} (below the front ends) imports the front end {to}: {}",
                    culprits(&g, &[], from, to).join("; ")
                ));
            } else if b >= a {
                problems.push(format!(
                    "{from} imports {to}, which is not in a lower layer: {}",
                    culprits(&g, &[], from, to).join("; ")
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The command line parser is the CLI's business: every other module takes plain values.
#[test]
fn clap_only_in_the_command_line() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let cli = src().join("cli");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(&cli) && !f.ends_with("main.rs"))
        .filter(|f| {
            std::fs::read_to_string(f)
                .expect("readable")
                .lines()
                .any(|l| !l.trim_start().starts_with("//") && l.contains("clap::"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "clap outside src/cli: {offenders:?}");
}

/// The test above must see real edges: a module graph read wrongly would pass vacuously.
#[test]
fn the_graph_sees_the_pipeline() {
    let g = graph();
    let top = &g.siblings[&Vec::new()];
    assert!(top["engine"].contains("rules"), "{top:?}");
    assert!(top["http"].contains("engine"), "{top:?}");
    let cycle: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert!(find_cycle(&cycle).is_some());
}
