//! `quorum trace` as a user runs it: the list, a scenario's story, a wrong
//! protocol named.

mod common;

use common::quorum;

#[test]
fn the_list_names_every_scenario_and_a_protocol_narrows_it() {
    let (code, all, _) = quorum(&["trace", "--list"]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(all.lines().count(), quorum_scenarios::ALL.len(), "{all}");
    let (code, zab, _) = quorum(&["trace", "--list", "--protocol", "zab"]);
    assert_eq!(code, 0, "{zab}");
    let names: Vec<&str> = zab.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["zab-recovery", "compare"], "{zab}");
}

#[test]
fn a_scenario_tells_its_story_and_a_wrong_protocol_is_refused_with_the_ones_that_fit() {
    let (code, story, _) = quorum(&["trace", "--scenario", "raft-election", "--format", "story"]);
    assert_eq!(code, 0, "{story}");
    assert!(story.contains("[ok] the first election split the vote"), "{story}");
    let (code, _, stderr) = quorum(&["trace", "--protocol", "zab", "--scenario", "flp"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("scenario 'flp' runs raft, not zab; scenarios for zab: zab-recovery, compare"), "{stderr}");
}
