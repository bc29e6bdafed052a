//! Results: Autobahn-shaped reports, the summary table, and the expected-results gate.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::Error;
use crate::case::{CaseId, Selection};
use crate::verdict::Verdict;

/// The outcome of one case for one agent.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub id: CaseId,
    /// The agent (the implementation under test).
    pub agent: String,
    /// The behaviour verdict.
    pub behavior: Verdict,
    /// The close verdict.
    pub behavior_close: Verdict,
    /// Why the behaviour verdict.
    pub result: String,
    /// Why the close verdict.
    pub result_close: String,
    /// From the start of the case to the end of the connection, in milliseconds.
    pub duration_ms: u64,
    /// The code of the peer's close frame, if any.
    pub remote_close_code: Option<u16>,
    /// The duration is the point of the case (section 9).
    pub report_time: bool,
    /// The whole per-case report, as written to its JSON file.
    pub detail: Value,
}

impl CaseResult {
    /// The report file name, as Autobahn names it: `agent_case_1_1_1.json`.
    pub fn report_file(&self) -> String {
        format!(
            "{}_case_{}.json",
            clean_for_filename(&self.agent),
            self.id.underscored()
        )
    }

    /// The worse of the two verdicts' classes (see [`Verdict::class`]).
    pub fn class(&self) -> Verdict {
        let (a, b) = (self.behavior.class(), self.behavior_close.class());
        for worst in [Verdict::Failed, Verdict::NonStrict] {
            if a == worst || b == worst {
                return worst;
            }
        }
        a
    }
}

/// Autobahn's file-name cleaning: lower case, anything but `[a-z0-9]` becomes `_`.
fn clean_for_filename(s: &str) -> String {
    let spaced: String = s
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                ' '
            }
        })
        .collect();
    spaced.trim().replace(' ', "_")
}

/// All results of a run, in case order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The results.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// Writes `index.json` (per agent, per case: behavior, behaviorClose, duration,
    /// remoteCloseCode, reportfile) and one JSON file per case into `dir`.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory or a file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir)?;
        let mut index: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for r in &self.results {
            index.entry(&r.agent).or_default().insert(
                r.id.to_string(),
                json!({
                    "behavior": r.behavior,
                    "behaviorClose": r.behavior_close,
                    "duration": r.duration_ms,
                    "remoteCloseCode": r.remote_close_code,
                    "reportfile": r.report_file(),
                }),
            );
            let text = serde_json::to_string_pretty(&r.detail).expect("JSON values serialize");
            std::fs::write(dir.join(r.report_file()), text + "\n")?;
        }
        let text = serde_json::to_string_pretty(&index).expect("JSON values serialize");
        std::fs::write(dir.join("index.json"), text + "\n")?;
        Ok(())
    }

    /// Writes an expected-results file: per agent, per case, the two verdicts only.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    pub fn write_expected(&self, path: &Path) -> Result<(), Error> {
        let mut out: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for r in &self.results {
            out.entry(&r.agent).or_default().insert(
                r.id.to_string(),
                json!({ "behavior": r.behavior, "behaviorClose": r.behavior_close }),
            );
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let text = serde_json::to_string_pretty(&out).expect("JSON values serialize");
        std::fs::write(path, text + "\n")?;
        Ok(())
    }

    /// Compares the verdicts with an expected-results file (the shape of `index.json`; only
    /// `behavior` and `behaviorClose` are compared, and cases outside `selection` are
    /// ignored). An expected verdict may list alternatives, `NON-STRICT|OK`, for a peer whose
    /// verdict depends on timing (whether two frames reach it in one read). Returns one line
    /// per difference; empty means equal.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Json`] if the file cannot be read or is not such a file.
    pub fn compare(&self, path: &Path, selection: &Selection) -> Result<Vec<String>, Error> {
        let text = std::fs::read_to_string(path)?;
        let json_err = |source| Error::Json {
            path: path.display().to_string(),
            source,
        };
        let all: BTreeMap<String, BTreeMap<String, Value>> =
            serde_json::from_str(&text).map_err(json_err)?;
        let agent = self
            .results
            .first()
            .map(|r| r.agent.clone())
            .unwrap_or_default();
        let expected = match all.get(&agent) {
            Some(cases) => cases.clone(),
            None if all.len() == 1 => all.into_values().next().unwrap_or_default(),
            None => BTreeMap::new(),
        };
        let mut diffs = Vec::new();
        let mut seen = BTreeSet::new();
        for r in &self.results {
            let id = r.id.to_string();
            seen.insert(id.clone());
            let (behavior, close) = (r.behavior.to_string(), r.behavior_close.to_string());
            let got = format!("{behavior} / {close}");
            match expected.get(&id) {
                None => diffs.push(format!("{id}: not in the expected file (got {got})")),
                Some(e) => {
                    let field = |name: &str| e[name].as_str().unwrap_or("?").to_string();
                    let (want_behavior, want_close) = (field("behavior"), field("behaviorClose"));
                    let accepts = |want: &str, got: &str| want.split('|').any(|w| w == got);
                    let want = format!("{want_behavior} / {want_close}");
                    if !accepts(&want_behavior, &behavior) || !accepts(&want_close, &close) {
                        diffs.push(format!("{id}: expected {want}, got {got} ({})", r.result));
                    }
                }
            }
        }
        for id in expected.keys() {
            let selected = id.parse::<CaseId>().is_ok_and(|c| selection.matches(c));
            if selected && !seen.contains(id) {
                diffs.push(format!("{id}: expected but not run"));
            }
        }
        Ok(diffs)
    }

    /// Whether the run passes: no FAILED (nor UNCLEAN) verdict, and with `strict` no
    /// NON-STRICT (nor WRONG CODE, FAILED BY CLIENT) either.
    pub fn passed(&self, strict: bool) -> bool {
        self.results.iter().all(|r| match r.class() {
            Verdict::Failed => false,
            Verdict::NonStrict => !strict,
            _ => true,
        })
    }

    /// The summary table: counts per verdict, the cases that are not OK, and section 9's
    /// durations.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let agents: BTreeSet<&str> = self.results.iter().map(|r| r.agent.as_str()).collect();
        let agents: Vec<&str> = agents.into_iter().collect();
        let _ = writeln!(
            out,
            "{} cases, agent {}",
            self.results.len(),
            agents.join(", ")
        );
        for (label, pick) in [
            (
                "behavior",
                (|r: &CaseResult| r.behavior) as fn(&CaseResult) -> Verdict,
            ),
            ("close", |r: &CaseResult| r.behavior_close),
        ] {
            let mut counts: BTreeMap<Verdict, usize> = BTreeMap::new();
            for r in &self.results {
                *counts.entry(pick(r)).or_default() += 1;
            }
            let cells: Vec<String> = counts.iter().map(|(v, n)| format!("{v} {n}")).collect();
            let _ = writeln!(out, "  {label:<9} {}", cells.join(", "));
        }
        for (label, class) in [
            ("FAILED", Verdict::Failed),
            ("NON-STRICT", Verdict::NonStrict),
        ] {
            let ids: Vec<String> = self
                .results
                .iter()
                .filter(|r| r.class() == class)
                .map(|r| format!("{} ({}/{})", r.id, r.behavior, r.behavior_close))
                .collect();
            if !ids.is_empty() {
                let _ = writeln!(out, "  {label} ({}): {}", ids.len(), ids.join(", "));
            }
        }
        let timed: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.report_time && r.behavior != Verdict::Unimplemented)
            .map(|r| format!("{} {} ms", r.id, r.duration_ms))
            .collect();
        if !timed.is_empty() {
            let _ = writeln!(out, "  durations:");
            for row in timed.chunks(6) {
                let _ = writeln!(out, "    {}", row.join(" | "));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, behavior: Verdict, close: Verdict) -> CaseResult {
        CaseResult {
            id: id.parse().unwrap(),
            agent: "Tolqin 0.1".into(),
            behavior,
            behavior_close: close,
            result: String::new(),
            result_close: String::new(),
            duration_ms: 3,
            remote_close_code: Some(1000),
            report_time: false,
            detail: json!({}),
        }
    }

    #[test]
    fn file_names_follow_autobahn() {
        let r = result("1.1.1", Verdict::Ok, Verdict::Ok);
        assert_eq!(r.report_file(), "tolqin_0_1_case_1_1_1.json");
    }

    #[test]
    fn pass_and_strict() {
        let mut report = Report {
            results: vec![
                result("1.1.1", Verdict::Ok, Verdict::Ok),
                result("6.4.3", Verdict::NonStrict, Verdict::Ok),
                result("12.1.1", Verdict::Unimplemented, Verdict::Ok),
            ],
        };
        assert!(report.passed(false));
        assert!(!report.passed(true));
        report
            .results
            .push(result("7.1.1", Verdict::Ok, Verdict::Unclean));
        assert!(!report.passed(false));
        let summary = report.summary();
        assert!(
            summary.contains("FAILED (1): 7.1.1 (OK/UNCLEAN)"),
            "{summary}"
        );
        assert!(summary.contains("NON-STRICT (1): 6.4.3"), "{summary}");
    }

    #[test]
    fn expected_gate_reports_every_difference() {
        let dir = std::env::temp_dir().join(format!("tolqin-conformance-{}", std::process::id()));
        let path = dir.join("expected.json");
        let report = Report {
            results: vec![
                result("1.1.1", Verdict::Ok, Verdict::Ok),
                result("2.1", Verdict::Ok, Verdict::Ok),
            ],
        };
        report.write_expected(&path).unwrap();
        let all = Selection::new("", "");
        assert!(report.compare(&path, &all).unwrap().is_empty());

        let changed = Report {
            results: vec![
                result("1.1.1", Verdict::Failed, Verdict::Ok),
                result("3.1", Verdict::Ok, Verdict::Ok),
            ],
        };
        let diffs = changed.compare(&path, &all).unwrap();
        assert_eq!(diffs.len(), 3, "{diffs:?}");
        assert!(diffs[0].starts_with("1.1.1: expected OK / OK, got FAILED / OK"));
        assert!(diffs[1].starts_with("3.1: not in the expected file"));
        assert_eq!(diffs[2], "2.1: expected but not run");
        // Cases outside the selection are not required.
        let only_1 = Selection::new("1.*,3.*", "");
        assert_eq!(changed.compare(&path, &only_1).unwrap().len(), 2);
        report.write(&dir).unwrap();
        let index: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap())
                .unwrap();
        assert_eq!(
            index["Tolqin 0.1"]["2.1"]["reportfile"],
            "tolqin_0_1_case_2_1.json"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_expected_verdict_may_list_alternatives() {
        let dir = std::env::temp_dir().join(format!("tolqin-alternatives-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("expected.json");
        let expected = r#"{"peer": {"3.3": {"behavior": "NON-STRICT|OK", "behaviorClose": "OK"}}}"#;
        std::fs::write(&path, expected).unwrap();
        let all = Selection::new("", "");
        for behavior in [Verdict::NonStrict, Verdict::Ok] {
            let report = Report {
                results: vec![result("3.3", behavior, Verdict::Ok)],
            };
            assert!(report.compare(&path, &all).unwrap().is_empty());
        }
        let failed = Report {
            results: vec![result("3.3", Verdict::Failed, Verdict::Ok)],
        };
        let diffs = failed.compare(&path, &all).unwrap();
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(diffs[0].starts_with("3.3: expected NON-STRICT|OK / OK, got FAILED / OK"));
        // Nor does the close verdict accept what is not listed.
        let closed = Report {
            results: vec![result("3.3", Verdict::Ok, Verdict::Failed)],
        };
        assert_eq!(closed.compare(&path, &all).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
