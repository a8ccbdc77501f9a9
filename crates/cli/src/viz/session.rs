//! A tab's simulation: the cluster, the learner's actions so far, and the
//! requests the page sends. A run is a pure function of its protocol, size,
//! seed and actions (each stamped with the simulator step and virtual time it
//! came at), so rewinding rebuilds the cluster and replays them.

use super::world::{build, Action, NodeView, World};
use quorum_sim::{describe, Flight, TraceEvent, Violation, What};
use serde::{Deserialize, Serialize};

/// The most events one frame carries: at full speed a frame may cover
/// thousands; the page lists the latest and counts the rest.
const EVENTS_PER_FRAME: usize = 300;
/// The most simulator steps one request runs, so that every answer comes quickly.
const STEPS_PER_REQUEST: u64 = 50_000;
/// The most virtual time one `advance` asks for.
const MAX_ADVANCE_NS: u64 = 10_000_000_000;
/// A tab's trace stops growing here (about 200 MB): rewind or reset to go on.
pub const TRACE_LIMIT: usize = 1_000_000;
/// The most actions one run records.
const ACTION_LIMIT: usize = 10_000;
/// The most events an export renders.
const EXPORT_LIMIT: usize = 2_000;

/// What the page asks for.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run `ns` more virtual nanoseconds.
    Advance { ns: u64 },
    /// Run until the next traced event.
    Step,
    /// Do something to the cluster now.
    Act { action: Action },
    /// Go back to the moment the trace held `keep` events (replaying from the seed).
    Rewind { keep: usize },
    /// Start over, perhaps with another protocol, size or seed.
    Reset { protocol: Option<String>, nodes: Option<usize>, seed: Option<u64> },
    /// The Mermaid diagram of events `from..to` and how to replay the run.
    Export { from: usize, to: usize },
}

/// One traced event, numbered, with its plain-words line.
#[derive(Clone, Debug, Serialize)]
pub struct EventView {
    /// Its place in the trace, from 0.
    pub i: usize,
    /// The event.
    #[serde(flatten)]
    pub event: TraceEvent,
    /// What `quorum trace --format text` says of it.
    pub text: String,
}

/// What an export gives.
#[derive(Clone, Debug, Serialize)]
pub struct Export {
    /// A Mermaid `sequenceDiagram` of the events asked for.
    pub mermaid: String,
    /// The command that opens the same run, once `actions` is saved as `actions.json`.
    pub command: String,
    /// The actions taken so far, as the page sends them, with the step and time of each.
    pub actions: String,
    /// The same events as one self-contained page that plays them (what
    /// `quorum trace --format html` writes for a scenario).
    pub html: String,
}

/// The answer to every request: the cluster as it is now.
#[derive(Clone, Debug, Serialize)]
pub struct Frame {
    /// The protocol.
    pub protocol: String,
    /// Cluster size.
    pub size: usize,
    /// The seed.
    pub seed: u64,
    /// Virtual time, in nanoseconds.
    pub now_ns: u64,
    /// Events in the trace so far.
    pub trace_len: usize,
    /// The trace was rebuilt (rewind, reset): forget the events shown before.
    pub rebuilt: bool,
    /// New events since the last frame (the latest ones, if there were many).
    pub events: Vec<EventView>,
    /// New events left out of `events`.
    pub skipped: usize,
    /// Every node.
    pub nodes: Vec<NodeView>,
    /// Cut links, (from, to).
    pub cuts: Vec<(u64, u64)>,
    /// Lossy links, (a, b, percent lost).
    pub lossy: Vec<(u64, u64, u64)>,
    /// What is on the wire.
    pub flights: Vec<Flight>,
    /// Failed safety checks.
    pub violations: Vec<Violation>,
    /// Where in the trace the first failed check is: rewinding to just
    /// after it shows the cluster as the check saw it.
    pub violation_event: Option<usize>,
    /// Actions taken so far.
    pub actions: usize,
    /// The trace is at its limit: the run will not go further.
    pub at_limit: bool,
    /// Why the request was refused, if it was.
    pub error: Option<String>,
    /// The export asked for.
    pub export: Option<Export>,
}

/// An action and the moment it came: after `step` simulator steps, at `at_ns`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Recorded {
    step: u64,
    at_ns: u64,
    action: Action,
}

/// Rebuilds a run from its seed, carrying out `actions` at their moments,
/// until the trace holds `keep` events (the actions after that point are
/// dropped) or the actions run out. Actions out of order, or at a moment the
/// run never reaches, are refused.
fn replay(
    protocol: &str,
    size: usize,
    seed: u64,
    actions: Vec<Recorded>,
    keep: usize,
) -> Result<(Box<dyn World>, Vec<Recorded>), String> {
    let mut world = build(protocol, size, seed)?;
    let mut kept: Vec<Recorded> = Vec::new();
    for (n, recorded) in actions.into_iter().enumerate() {
        if kept.last().is_some_and(|last| (last.step, last.at_ns) > (recorded.step, recorded.at_ns)) {
            return Err(format!("action {n} comes before the one before it"));
        }
        while world.steps() < recorded.step && world.trace().len() < keep {
            if !world.step() {
                return Err(format!("action {n} comes at step {}, which the run never reaches", recorded.step));
            }
        }
        if world.trace().len() >= keep {
            break;
        }
        // The action came after `step` steps, at `at_ns`: no event ran
        // between the two (the clock moved on with nothing due), unless the
        // page was stepping, and then the clock is already there.
        if world.now_ns() < recorded.at_ns {
            world.run_until_ns(recorded.at_ns);
        }
        if world.steps() != recorded.step {
            return Err(format!(
                "action {n} comes at step {} and {} ns, which do not meet",
                recorded.step, recorded.at_ns
            ));
        }
        world.apply(&recorded.action).map_err(|e| format!("action {n}: {e}"))?;
        kept.push(recorded);
    }
    Ok((world, kept))
}

/// One tab's simulation.
pub struct Session {
    protocol: String,
    size: usize,
    seed: u64,
    world: Box<dyn World>,
    actions: Vec<Recorded>,
    /// Trace events already sent to the page.
    sent: usize,
    /// Trace events already searched for a failed check.
    seen: usize,
    /// Where in the trace the first failed check is.
    first_violation: Option<usize>,
}

impl Session {
    /// A fresh cluster.
    pub fn new(protocol: &str, size: usize, seed: u64) -> Result<Session, String> {
        Ok(Session::of(protocol, size, seed, build(protocol, size, seed)?, Vec::new()))
    }

    fn of(protocol: &str, size: usize, seed: u64, world: Box<dyn World>, actions: Vec<Recorded>) -> Session {
        Session { protocol: protocol.to_string(), size, seed, world, actions, sent: 0, seen: 0, first_violation: None }
    }

    /// Handles one request; a refused one leaves the run as it was and says why.
    pub fn handle(&mut self, request: Request) -> Frame {
        let mut export = None;
        let outcome = match request {
            Request::Advance { ns } => self.advance(ns),
            Request::Step => self.step(),
            Request::Act { action } => self.act(action),
            Request::Rewind { keep } => self.rewind(keep),
            Request::Reset { protocol, nodes, seed } => self.reset(protocol, nodes, seed),
            Request::Export { from, to } => self.export(from, to).map(|e| {
                export = Some(e);
                false
            }),
        };
        let rebuilt = outcome.as_ref().is_ok_and(|rebuilt| *rebuilt);
        let mut frame = self.frame(rebuilt);
        frame.error = outcome.err();
        frame.export = export;
        frame
    }

    /// A frame for a page that has just connected or asked again.
    pub fn frame(&mut self, rebuilt: bool) -> Frame {
        let trace = self.world.trace();
        if self.first_violation.is_none() {
            let found =
                trace[self.seen.min(trace.len())..].iter().position(|e| matches!(e.what, What::Violation { .. }));
            self.first_violation = found.map(|k| self.seen + k);
        }
        self.seen = trace.len();
        let from = if rebuilt { trace.len().saturating_sub(EVENTS_PER_FRAME) } else { self.sent.min(trace.len()) };
        let first = from.max(trace.len().saturating_sub(EVENTS_PER_FRAME));
        let events = trace[first..]
            .iter()
            .enumerate()
            .map(|(k, e)| EventView { i: first + k, event: e.clone(), text: describe(&e.what) })
            .collect();
        self.sent = trace.len();
        Frame {
            protocol: self.protocol.clone(),
            size: self.size,
            seed: self.seed,
            now_ns: self.world.now_ns(),
            trace_len: trace.len(),
            rebuilt,
            events,
            skipped: first - from,
            nodes: self.world.nodes(),
            cuts: self.world.cuts(),
            lossy: self.world.lossy(),
            flights: self.world.flights(),
            violations: self.world.violations().to_vec(),
            violation_event: self.first_violation,
            actions: self.actions.len(),
            at_limit: trace.len() >= TRACE_LIMIT,
            error: None,
            export: None,
        }
    }

    fn room(&self) -> Result<(), String> {
        if self.world.trace().len() >= TRACE_LIMIT {
            return Err(format!("this run has reached {TRACE_LIMIT} events: rewind or reset to go on"));
        }
        Ok(())
    }

    fn advance(&mut self, ns: u64) -> Result<bool, String> {
        self.room()?;
        let target = self.world.now_ns().saturating_add(ns.min(MAX_ADVANCE_NS));
        let mut steps = 0;
        while self.world.next_event_ns().is_some_and(|t| t <= target) {
            if steps == STEPS_PER_REQUEST || self.world.trace().len() >= TRACE_LIMIT {
                return Ok(false); // the clock stays at the last event run; the page asks again
            }
            self.world.step();
            steps += 1;
        }
        self.world.run_until_ns(target);
        Ok(false)
    }

    fn step(&mut self) -> Result<bool, String> {
        self.room()?;
        let before = self.world.trace().len();
        for _ in 0..STEPS_PER_REQUEST {
            if !self.world.step() || self.world.trace().len() > before {
                break;
            }
        }
        Ok(false)
    }

    fn act(&mut self, action: Action) -> Result<bool, String> {
        self.room()?;
        if self.actions.len() >= ACTION_LIMIT {
            return Err(format!("this run has {ACTION_LIMIT} actions, the most one run keeps: reset to go on"));
        }
        let (step, at_ns) = (self.world.steps(), self.world.now_ns());
        self.world.apply(&action)?;
        self.actions.push(Recorded { step, at_ns, action });
        Ok(false)
    }

    /// Rebuilds the run from its seed up to the moment the trace held `keep`
    /// events (or a little after: one simulator step may trace several).
    fn rewind(&mut self, keep: usize) -> Result<bool, String> {
        if keep >= self.world.trace().len() {
            return Ok(false); // that is now, or later
        }
        let actions = std::mem::take(&mut self.actions);
        let (mut world, kept) = replay(&self.protocol, self.size, self.seed, actions, keep)
            .expect("actions that were carried out once are carried out again");
        while world.trace().len() < keep && world.step() {}
        self.world = world;
        self.actions = kept;
        self.first_violation = None;
        self.seen = 0;
        Ok(true)
    }

    /// A run rebuilt from its seed with `actions` (as an export lists them)
    /// carried out at their moments: what `quorum viz --replay` opens.
    pub fn replaying(protocol: &str, size: usize, seed: u64, actions: &str) -> Result<Session, String> {
        let actions: Vec<Recorded> =
            serde_json::from_str(actions).map_err(|e| format!("not a list of actions as an export gives: {e}"))?;
        if actions.len() > ACTION_LIMIT {
            return Err(format!("{} actions, more than the {ACTION_LIMIT} a run keeps", actions.len()));
        }
        let (world, actions) = replay(protocol, size, seed, actions, TRACE_LIMIT)?;
        Ok(Session::of(protocol, size, seed, world, actions))
    }

    fn reset(&mut self, protocol: Option<String>, nodes: Option<usize>, seed: Option<u64>) -> Result<bool, String> {
        let protocol = protocol.unwrap_or_else(|| self.protocol.clone());
        *self = Session::new(&protocol, nodes.unwrap_or(self.size), seed.unwrap_or(self.seed))?;
        Ok(true)
    }

    fn export(&self, from: usize, to: usize) -> Result<Export, String> {
        let trace = self.world.trace();
        let to = to.min(trace.len());
        if from >= to {
            return Err(format!("no events in {from}..{to}: the trace holds {}", trace.len()));
        }
        let from = from.max(to.saturating_sub(EXPORT_LIMIT));
        let title = format!("{} on {} nodes, seed {}: events {from} to {to}", self.protocol, self.size, self.seed);
        let lines: Vec<(u64, String)> = self
            .actions
            .iter()
            .map(|a| (a.at_ns, format!("you: {}", serde_json::to_string(&a.action).expect("actions serialize"))))
            .collect();
        let lines = lines.iter().map(|(at, s)| (*at, s.as_str())).collect();
        // A failed safety check is shown as a claim that failed.
        let violations: Vec<String> =
            self.world.violations().iter().map(|v| format!("{}: {}", v.check, v.detail)).collect();
        let checks = violations.iter().map(|v| (v.as_str(), false)).collect();
        let html = super::player::page(&title, &self.protocol, self.size, &trace[from..to], lines, checks);
        Ok(Export {
            html,
            mermaid: quorum_sim::render_mermaid(&trace[from..to], self.size),
            command: format!(
                "quorum viz --protocol {} --nodes {} --seed {} --replay actions.json",
                self.protocol, self.size, self.seed
            ),
            actions: serde_json::to_string(&self.actions).expect("actions serialize"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advance(s: &mut Session, ms: u64) -> Frame {
        s.handle(Request::Advance { ns: ms * 1_000_000 })
    }

    fn leader(f: &Frame) -> Option<u64> {
        f.nodes.iter().find(|n| n.up && n.role == "leader").map(|n| n.id)
    }

    #[test]
    fn a_rewind_replays_the_run_up_to_the_moment_asked_for() {
        let mut s = Session::new("raft", 5, 3).unwrap();
        let elected = advance(&mut s, 1_000);
        let first = leader(&elected).expect("a leader within a second");
        let before_crash = s.world.trace().len();
        let nodes_before = elected.nodes.clone();
        s.handle(Request::Act { action: Action::Crash { node: first } });
        advance(&mut s, 1_000);
        s.handle(Request::Act { action: Action::Write { node: 1, key: "x".into(), value: "1".into() } });
        let later = advance(&mut s, 1_000);
        assert!(leader(&later).is_some_and(|l| l != first), "a new leader: {:?}", later.nodes);
        let whole: Vec<TraceEvent> = s.world.trace().to_vec();

        // Back to a moment between the crash and the write: the crash is kept.
        let mid = whole.iter().position(|e| matches!(e.what, quorum_sim::What::Request { .. })).unwrap();
        let back = s.handle(Request::Rewind { keep: mid });
        assert!(back.rebuilt && back.error.is_none());
        assert_eq!(back.actions, 1, "the crash, not the write");
        assert_eq!(s.world.trace(), &whole[..s.world.trace().len()]);
        assert!(!back.nodes[first as usize - 1].up);

        // Back to just before the crash: the same events, the same nodes, no actions.
        let back = s.handle(Request::Rewind { keep: before_crash });
        assert_eq!(back.actions, 0);
        assert_eq!(s.world.trace(), &whole[..before_crash]);
        assert_eq!(back.nodes, nodes_before);
    }

    #[test]
    fn stepping_and_acting_mid_instant_replays_exactly() {
        let mut s = Session::new("zab", 3, 8).unwrap();
        advance(&mut s, 300);
        for _ in 0..5 {
            s.handle(Request::Step);
        }
        s.handle(Request::Act { action: Action::Freeze { node: 2 } });
        for _ in 0..5 {
            s.handle(Request::Step);
        }
        s.handle(Request::Act { action: Action::Thaw { node: 2 } });
        advance(&mut s, 500);
        let whole: Vec<TraceEvent> = s.world.trace().to_vec();
        s.handle(Request::Rewind { keep: whole.len() - 1 });
        assert_eq!(s.world.trace(), &whole[..s.world.trace().len()]);
        assert_eq!(s.actions.len(), 2);
    }

    #[test]
    fn a_request_that_cannot_be_carried_out_is_refused_and_changes_nothing() {
        let mut s = Session::new("multipaxos", 3, 1).unwrap();
        advance(&mut s, 200);
        let len = s.world.trace().len();
        for action in [Action::Crash { node: 0 }, Action::Crash { node: 4 }, Action::Cut { a: 2, b: 2 }] {
            let f = s.handle(Request::Act { action: action.clone() });
            let error = f.error.unwrap_or_else(|| panic!("{action:?} accepted"));
            assert!(error.contains("node"), "{error}");
        }
        let f = s.handle(Request::Reset { protocol: Some("nope".into()), nodes: None, seed: None });
        assert!(f.error.unwrap().contains("unknown protocol"));
        let f = s.handle(Request::Reset { protocol: None, nodes: Some(40), seed: None });
        assert!(f.error.unwrap().contains("choose 1 to 9"));
        let f = s.handle(Request::Export { from: 10, to: 5 });
        assert!(f.error.unwrap().contains("no events"));
        assert_eq!((s.world.trace().len(), s.actions.len(), s.protocol.as_str()), (len, 0, "multipaxos"));
    }

    #[test]
    fn one_frame_lists_at_most_its_share_of_events_and_counts_the_rest() {
        let mut s = Session::new("raft", 5, 1).unwrap();
        let f = advance(&mut s, 5_000);
        assert!(f.trace_len > EVENTS_PER_FRAME, "{} events", f.trace_len);
        assert_eq!(f.events.len(), EVENTS_PER_FRAME);
        assert_eq!(f.events.len() + f.skipped, f.trace_len);
        assert_eq!(f.events.last().unwrap().i, f.trace_len - 1);
        let next = advance(&mut s, 1);
        assert!(next.events.iter().all(|e| e.i >= f.trace_len), "only new events");
    }

    #[test]
    fn a_write_is_answered_and_applied_and_exported() {
        let mut s = Session::new("raft", 3, 5).unwrap();
        let f = advance(&mut s, 1_000);
        let l = leader(&f).unwrap();
        let follower = if l == 1 { 2 } else { 1 };
        // Sent to a follower: redirected to the leader, then answered.
        s.handle(Request::Act { action: Action::Write { node: follower, key: "k".into(), value: "hello".into() } });
        let f = advance(&mut s, 500);
        assert!(f.nodes.iter().all(|n| n.log.iter().any(|e| e.ends_with("put k=hello"))), "{:?}", f.nodes);
        let replies: Vec<&str> = s
            .world
            .trace()
            .iter()
            .filter_map(|e| match &e.what {
                quorum_sim::What::Reply { result, .. } => Some(result.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(replies.last(), Some(&"ok"), "{replies:?}");
        let len = s.world.trace().len();
        let e = s.handle(Request::Export { from: 0, to: len }).export.unwrap();
        assert!(e.mermaid.starts_with("sequenceDiagram"));
        assert!(e.mermaid.contains("put k=hello"), "{}", e.mermaid);
        assert_eq!(e.command, "quorum viz --protocol raft --nodes 3 --seed 5 --replay actions.json");
        assert!(e.actions.contains(r#""do":"write""#), "{}", e.actions);
    }
}

#[cfg(test)]
mod replay_tests {
    use super::super::world::DiskEntry;
    use super::*;

    fn act(s: &mut Session, action: Action) {
        let f = s.handle(Request::Act { action });
        assert!(f.error.is_none(), "{:?}", f.error);
    }

    fn advance(s: &mut Session, ms: u64) -> Frame {
        s.handle(Request::Advance { ns: ms * 1_000_000 })
    }

    #[test]
    fn an_exported_run_replays_to_the_same_events() {
        let mut s = Session::new("zab", 5, 4).unwrap();
        advance(&mut s, 700);
        act(&mut s, Action::Isolate { node: 2 });
        advance(&mut s, 300);
        s.handle(Request::Step);
        act(&mut s, Action::Write { node: 3, key: "k".into(), value: "v".into() });
        advance(&mut s, 200);
        act(&mut s, Action::Heal);
        let len = s.world.trace().len();
        let export = s.handle(Request::Export { from: 0, to: len }).export.unwrap();
        let replayed = Session::replaying("zab", 5, 4, &export.actions).unwrap();
        assert_eq!(replayed.world.trace(), s.world.trace(), "the run up to its last action, event for event");
        assert_eq!(replayed.actions.len(), 3, "{}", export.actions);
    }

    #[test]
    fn a_replay_file_that_does_not_fit_the_run_is_refused_with_the_reason() {
        let refuse = |actions: &str, why: &str| {
            let e = Session::replaying("raft", 3, 1, actions).err().unwrap_or_else(|| panic!("{actions} accepted"));
            assert!(e.contains(why), "{actions}: {e}");
        };
        refuse("not json", "not a list of actions");
        refuse(r#"[{"step": 1, "at_ns": 5, "action": {"do": "crash", "node": 9}}]"#, "action 0: there is no node 9");
        refuse(
            r#"[{"step": 50, "at_ns": 5000000, "action": {"do": "heal"}}, {"step": 10, "at_ns": 1, "action": {"do": "heal"}}]"#,
            "action 1 comes before the one before it",
        );
        // Step 3 comes long before 1 s: the moments do not meet.
        refuse(r#"[{"step": 3, "at_ns": 1000000000, "action": {"do": "heal"}}]"#, "which do not meet");
        refuse(r#"[{"step": 3, "at_ns": 0, "action": {"do": "jump"}}]"#, "not a list of actions");
    }

    #[test]
    fn a_cut_off_leader_shows_the_write_it_holds_but_cannot_commit() {
        for protocol in ["raft", "multipaxos", "zab"] {
            let mut s = Session::new(protocol, 5, 2).unwrap();
            let f = advance(&mut s, 1_000);
            let leader = f.nodes.iter().find(|n| n.role == "leader").unwrap_or_else(|| panic!("{protocol}")).id;
            act(&mut s, Action::Isolate { node: leader });
            act(&mut s, Action::Write { node: leader, key: "k".into(), value: "lost".into() });
            let f = advance(&mut s, 50);
            let view = &f.nodes[leader as usize - 1];
            let held: Vec<&DiskEntry> = view.disk.iter().filter(|e| e.index > view.commit).collect();
            assert!(held.iter().any(|e| e.what == "put k=lost"), "{protocol}: {view:?}");
            assert!(f.nodes.iter().all(|n| !n.log.iter().any(|e| e.ends_with("put k=lost"))), "{protocol}: applied");
        }
    }

    #[test]
    fn a_planted_bug_is_caught_and_the_page_can_go_back_to_the_moment() {
        let mut s = Session::new("planted-divergence", 3, 1).unwrap();
        advance(&mut s, 300);
        // Many writes at once: the links reorder them, and the backups apply
        // them in the order they arrive.
        let primary = s.world.nodes().iter().find(|n| n.role == "leader").map(|n| n.id).unwrap();
        for k in 0..10 {
            act(&mut s, Action::Write { node: primary, key: format!("k{k}"), value: "v".into() });
        }
        let f = advance(&mut s, 300);
        assert!(!f.violations.is_empty(), "the divergent backups were not caught");
        let at = f.violation_event.expect("where the check failed");
        assert!(matches!(s.world.trace()[at].what, What::Violation { .. }));
        let back = s.handle(Request::Rewind { keep: at + 1 });
        assert_eq!(back.violation_event, Some(at));
        // One step may fail two checks (a lost acknowledged write is also a
        // state machine safety failure): the first is the same.
        assert_eq!(back.violations[0], f.violations[0], "the first failure, as the check saw it");
        assert!(back.now_ns < f.now_ns);
    }
}
