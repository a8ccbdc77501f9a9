//! A recorded run as one self-contained HTML page: the picture of `quorum
//! viz`, played from the run's events, with its narration beside it. Written
//! by `quorum trace --format html` and served as the guided tours of `quorum
//! viz` (`/tour/NAME`). No server and no network: the page holds the run.

use quorum_scenarios::Story;
use quorum_sim::{describe, TraceEvent};
use serde::Serialize;

#[derive(Serialize)]
struct Run<'a> {
    title: &'a str,
    protocol: &'a str,
    nodes: usize,
    events: Vec<Event<'a>>,
    /// Narration: (virtual nanoseconds, sentence).
    lines: Vec<(u64, &'a str)>,
    /// The claims the run makes, and whether each held.
    checks: Vec<(&'a str, bool)>,
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(flatten)]
    event: &'a TraceEvent,
    text: String,
}

/// The page that plays `story`, a run of `protocol`.
pub fn html(story: &Story, protocol: &str) -> String {
    let lines: Vec<(u64, &str)> = story.lines.iter().map(|(at, s)| (at.as_nanos(), s.as_str())).collect();
    let checks: Vec<(&str, bool)> = story.checks.iter().map(|(c, ok)| (c.as_str(), *ok)).collect();
    page(&story.title, protocol, story.nodes(), story.events(), lines, checks)
}

/// The page that plays `events`, a run of `protocol` on `nodes` nodes,
/// with narration `lines` (virtual nanoseconds, sentence) and `checks`.
pub fn page(
    title: &str,
    protocol: &str,
    nodes: usize,
    events: &[TraceEvent],
    lines: Vec<(u64, &str)>,
    checks: Vec<(&str, bool)>,
) -> String {
    let run = Run {
        title,
        protocol,
        nodes,
        events: events.iter().map(|event| Event { event, text: describe(&event.what) }).collect(),
        lines,
        checks,
    };
    // Inside <script>, "</" could end the element early: JSON allows "<\/".
    let json = serde_json::to_string(&run).expect("a run serializes").replace("</", "<\\/");
    include_str!("assets/player.html")
        .replace("__TITLE__", &escape(title))
        .replace("/*STYLE*/", include_str!("assets/style.css"))
        .replace("/*DRAW*/", include_str!("assets/draw.js"))
        .replace("/*PLAYER*/", include_str!("assets/player.js"))
        .replace("__RUN__", &json)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_the_whole_run_and_nothing_ends_its_script_early() {
        let scenario = quorum_scenarios::find("raft-partition").unwrap();
        let mut story = (scenario.run)();
        story.say(quorum_core::Instant::ZERO, "</script><b>not markup</b>");
        let page = html(&story, scenario.protocol);
        assert_eq!(page.matches("</script>").count(), 3, "the run's JSON, draw.js, player.js");
        assert!(page.contains(r#"<\/script><b>not markup<\/b>"#));
        let start = page.find(r#"type="application/json">"#).unwrap() + r#"type="application/json">"#.len();
        let json = &page[start..start + page[start..].find("</script>").unwrap()];
        let run: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(run["events"].as_array().unwrap().len(), story.events().len());
        assert_eq!(run["nodes"], story.nodes());
        assert!(run["events"][0]["text"].is_string());
        for placeholder in ["/*STYLE*/", "/*DRAW*/", "/*PLAYER*/", "__RUN__", "__TITLE__"] {
            assert!(!page.contains(placeholder), "{placeholder} left in the page");
        }
    }
}
