//! Every scenario the examples narrate must show what it claims, and every
//! example (but the lock service, which has tests of its own) is a scenario,
//! so none escapes this check.

#[test]
fn every_scenario_tells_a_true_story() {
    for s in quorum_scenarios::ALL {
        let story = (s.run)();
        assert!(story.passed(), "scenario {} failed its own claims:\n{}", s.name, story.narration());
        assert!(!story.events().is_empty(), "scenario {} has nothing to draw", s.name);
        assert!(story.mermaid().starts_with("sequenceDiagram"));
    }
}

#[test]
fn every_example_is_a_listed_scenario_that_runs_its_own_story() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("the examples folder") {
        let path = entry.expect("a folder entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        files += 1;
        let name = path.file_stem().and_then(|s| s.to_str()).expect("a file name").replace('_', "-");
        assert!(quorum_scenarios::find(&name).is_some(), "{} is not in quorum_scenarios::ALL", path.display());
        let body = std::fs::read_to_string(&path).expect("readable");
        assert!(
            body.contains("fn main() {\n    quorum_scenarios::example_main("),
            "{} does not run its story",
            path.display()
        );
    }
    assert_eq!(files, quorum_scenarios::ALL.len(), "one example file per scenario");
}
