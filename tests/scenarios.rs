//! Every scenario the examples narrate must show what it claims.

#[test]
fn every_scenario_tells_a_true_story() {
    for s in quorum::scenarios::ALL {
        let story = (s.run)();
        assert!(story.passed(), "scenario {} failed its own claims:\n{}", s.name, story.narration());
        assert!(!story.events().is_empty(), "scenario {} has nothing to draw", s.name);
        assert!(story.mermaid().starts_with("sequenceDiagram"));
    }
}

#[test]
fn every_scenario_has_an_example_of_the_same_name() {
    for s in quorum::scenarios::ALL {
        let file = format!("{}/examples/{}.rs", env!("CARGO_MANIFEST_DIR"), s.name.replace('-', "_"));
        let body = std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("missing {file}"));
        assert!(
            body.contains(&format!("example_main(\"{}\")", s.name.replace('-', "_"))),
            "{file} runs another scenario"
        );
    }
}
