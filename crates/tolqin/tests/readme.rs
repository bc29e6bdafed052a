//! The README's Rust code is real code: every ```rust block is preceded by
//! `<!-- example: PATH -->` and is exactly that example file (or the part of it between its
//! `// readme-begin` and `// readme-end` lines), which `cargo test --all-targets` builds. No
//! block has rustdoc's hidden `# ` lines, which a web page shows as they are. Every
//! `examples/readme_*.rs` is shown by some block, so none is left behind.
//!
//! Checked: the repository's README.md and this crate's README.md. (The crate package leaves
//! this test out: it reads the repository's README, which the package does not ship.)

use std::fs;
use std::path::{Path, PathBuf};

const MARKER: &str = "<!-- example: ";
const BEGIN: &str = "// readme-begin\n";
const END: &str = "// readme-end\n";

/// The repository's root (two levels above this crate).
fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// A ```rust block of a Markdown file: where it starts, the example it names, its text.
#[derive(Debug)]
struct Block {
    line: usize,
    example: Option<String>,
    code: String,
}

/// Every fenced block whose info string starts with `rust`, with the example marker on the
/// line just before its fence, if any.
fn rust_blocks(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if let Some(info) = line.strip_prefix("```") {
            let is_rust = info.trim().split(',').next() == Some("rust");
            let start = i;
            let mut code = String::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                code.push_str(lines[i]);
                code.push('\n');
                i += 1;
            }
            if is_rust {
                let example = start
                    .checked_sub(1)
                    .and_then(|before| lines[before].trim().strip_prefix(MARKER))
                    .and_then(|rest| rest.strip_suffix("-->"))
                    .map(|path| path.trim().to_string());
                blocks.push(Block {
                    line: start + 1,
                    example,
                    code,
                });
            }
        }
        i += 1;
    }
    blocks
}

/// What a README shows of an example file: the lines between its markers, or all of it.
fn shown_part(file: &str) -> Result<&str, String> {
    match (file.find(BEGIN), file.find(END)) {
        (Some(begin), Some(end)) if begin < end => Ok(&file[begin + BEGIN.len()..end]),
        (None, None) => Ok(file),
        _ => Err(format!(
            "needs both `{}` and `{}`, in that order",
            BEGIN.trim(),
            END.trim()
        )),
    }
}

/// rustdoc hides a line that is `#` or starts with `# ` (after indentation); `#[attr]` and
/// `#![attr]` are ordinary Rust.
fn hidden_lines(code: &str) -> Vec<&str> {
    code.lines()
        .filter(|l| {
            let t = l.trim_start();
            t == "#" || t.starts_with("# ")
        })
        .collect()
}

/// The problems of one Markdown file; the example files its blocks show are added to `shown`.
fn check_markdown(readme: &Path, root: &Path, shown: &mut Vec<PathBuf>) -> Vec<String> {
    let name = readme.display();
    let markdown = fs::read_to_string(readme).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
    let mut problems = Vec::new();
    for block in rust_blocks(&markdown) {
        let at = format!("{name}:{}", block.line);
        for hidden in hidden_lines(&block.code) {
            problems.push(format!(
                "{at}: rustdoc hidden line {hidden:?} shows on a web page"
            ));
        }
        let Some(example) = block.example else {
            problems.push(format!(
                "{at}: a ```rust block without `{MARKER}PATH -->` before it"
            ));
            continue;
        };
        let path = root.join(&example);
        let file = match fs::read_to_string(&path) {
            Ok(file) => file,
            Err(e) => {
                problems.push(format!("{at}: cannot read {example}: {e}"));
                continue;
            }
        };
        shown.push(path.canonicalize().unwrap_or(path));
        match shown_part(&file) {
            Err(e) => problems.push(format!("{at}: {example} {e}")),
            Ok(part) if part != block.code => {
                let (n, (want, got)) = part
                    .lines()
                    .chain(std::iter::repeat("<end>"))
                    .zip(block.code.lines().chain(std::iter::repeat("<end>")))
                    .enumerate()
                    .find(|(_, (a, b))| a != b)
                    .expect("different texts differ on some line");
                problems.push(format!(
                    "{at}: differs from {example} at its line {}: the example has {want:?}, \
                     the README {got:?}; copy the example's text into the README",
                    n + 1
                ));
            }
            Ok(_) => {}
        }
    }
    problems
}

#[test]
fn readme_rust_blocks_are_the_example_files() {
    let root = repo_root();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut shown = Vec::new();
    let mut problems = Vec::new();
    for readme in [root.join("README.md"), crate_dir.join("README.md")] {
        problems.extend(check_markdown(&readme, &root, &mut shown));
    }
    for entry in fs::read_dir(crate_dir.join("examples")).expect("examples/") {
        let path = entry.expect("examples/ entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("readme_") && name.ends_with(".rs") {
            let path = path.canonicalize().unwrap();
            if !shown.contains(&path) {
                problems.push(format!("examples/{name} is shown by no README block"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        shown.len() >= 5,
        "expected the README's five examples, found {shown:?}"
    );
}

/// The checks above catch what they are for: a hidden line, a block without its marker, a
/// block that drifted from its file, and half a pair of markers.
#[test]
fn the_checks_catch_drift() {
    let dir = std::env::temp_dir().join(format!("tolqin-readme-test-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("ex.rs"),
        "//! doc\n// readme-begin\nfn a() {}\n// readme-end\n",
    )
    .unwrap();
    fs::write(dir.join("half.rs"), "// readme-begin\nfn b() {}\n").unwrap();
    let cases = [
        ("<!-- example: ex.rs -->\n```rust\nfn a() {}\n```\n", None),
        (
            "<!-- example: ex.rs -->\n```rust\nfn a() { }\n```\n",
            Some("differs from ex.rs"),
        ),
        (
            "```rust\nfn a() {}\n```\n",
            Some("without `<!-- example: PATH -->`"),
        ),
        (
            "<!-- example: ex.rs -->\n```rust,no_run\n# fn x() {\nfn a() {}\n```\n",
            Some("hidden"),
        ),
        (
            "<!-- example: half.rs -->\n```rust\nfn b() {}\n```\n",
            Some("needs both"),
        ),
        ("```sh\n# a shell comment\n```\n", None),
    ];
    for (markdown, want) in cases {
        fs::write(dir.join("README.md"), markdown).unwrap();
        let problems = check_markdown(&dir.join("README.md"), &dir, &mut Vec::new());
        match want {
            None => assert!(problems.is_empty(), "{markdown:?}: {problems:?}"),
            Some(want) => assert!(
                problems.iter().any(|p| p.contains(want)),
                "{markdown:?}: expected {want:?} in {problems:?}"
            ),
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}
