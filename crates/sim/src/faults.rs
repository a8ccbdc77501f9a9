//! Fault injection: crashes and restarts, partitions (any split, one-way cuts)
//! that come and go, and pauses (a node frozen, then resumed), drawn from the
//! run's seed.

use crate::config::Faults;
use crate::sim::{Event, Sim};
use crate::trace::What;
use crate::Workload;
use quorum_core::{Duration, Instant, NodeId, Protocol};

/// A scheduled fault.
#[derive(Clone, Debug)]
pub(crate) enum FaultEvent {
    /// Pick and inject the next random fault.
    Next,
    Restart(usize),
    Heal,
    Thaw(usize),
}

impl<P: Protocol, W: Workload> Sim<P, W> {
    /// Splits the network into groups: nodes talk only within their group.
    /// Nodes not named form one more group.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        let n = self.hosts.len();
        let mut group_of = vec![usize::MAX; n];
        for (g, members) in groups.iter().enumerate() {
            for id in members.iter() {
                group_of[self.index(*id)] = g;
            }
        }
        for a in 0..n {
            for b in 0..n {
                if a != b && group_of[a] != group_of[b] {
                    self.cut_link(a, b);
                }
            }
        }
        let describe: Vec<String> = groups
            .iter()
            .map(|g| format!("{{{}}}", g.iter().map(|id| id.0.to_string()).collect::<Vec<_>>().join(",")))
            .collect();
        let cut = describe.join(" | ");
        self.trace.mix_u64s(&[9, self.now.as_nanos()]);
        self.trace.record(self.now, || What::Partition { cut });
    }

    /// Cuts the link from `from` to `to` only (messages the other way still flow).
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        let (a, b) = (self.index(from), self.index(to));
        self.cut_link(a, b);
        self.trace.mix_u64s(&[10, self.now.as_nanos(), a as u64, b as u64]);
        self.trace.record(self.now, || What::Partition { cut: format!("{} -> {} cut", from.0, to.0) });
    }

    /// Drops client `client`'s requests to `node` (clients are numbered
    /// from 0 in the order they start; traces call client 0 `c1`) until the
    /// next [`Sim::heal`].
    pub fn cut_client(&mut self, client: usize, node: NodeId) {
        let n = self.index(node);
        self.net.cut_client(client, n);
        self.trace.mix_u64s(&[15, self.now.as_nanos(), client as u64, n as u64]);
        let cut = format!("c{} -> n{} cut: its requests there are lost", client + 1, node.0);
        self.trace.record(self.now, || What::Partition { cut });
    }

    /// Makes the link between `a` and `b` lose a fraction `p` of its
    /// messages, both ways (on fifo links: break as often as that loss
    /// would), on top of the network's own loss (0: back to that).
    pub fn set_link_loss(&mut self, a: NodeId, b: NodeId, p: f64) {
        let (i, j) = (self.index(a), self.index(b));
        let p = p.clamp(0.0, 1.0);
        self.net.set_link_loss(i, j, p);
        self.trace.mix_u64s(&[16, self.now.as_nanos(), i as u64, j as u64, (p * 1e6) as u64]);
        let cut = format!("link {}-{} loses {:.0}%", a.0, b.0, p * 100.0);
        self.trace.record(self.now, || What::Partition { cut });
    }

    /// Restores the link between `a` and `b`, both ways: no cut
    /// ([`Sim::partition`], [`Sim::cut_one_way`]), no loss of its own
    /// ([`Sim::set_link_loss`]). Other links stay as they are.
    pub fn heal_link(&mut self, a: NodeId, b: NodeId) {
        let (i, j) = (self.index(a), self.index(b));
        if self.net.heal_link(i, j) {
            self.trace.mix_u64s(&[18, self.now.as_nanos(), i as u64, j as u64]);
            let cut = format!("link {}-{} healed", a.0, b.0);
            self.trace.record(self.now, || What::Partition { cut });
        }
    }

    /// The loss of the link from `from` to `to` set by [`Sim::set_link_loss`].
    pub fn link_loss(&self, from: NodeId, to: NodeId) -> f64 {
        self.net.link_loss(self.index(from), self.index(to))
    }

    /// Makes every fsync of node `id`'s disk take `extra` longer (zero: back
    /// to the configured time), from its next fsync on.
    pub fn set_disk_delay(&mut self, id: NodeId, extra: Duration) {
        let i = self.index(id);
        self.hosts[i].slow_disk = extra;
        self.trace.mix_u64s(&[17, self.now.as_nanos(), i as u64, extra.as_nanos()]);
        let cut = format!("{}'s disk syncs {extra} slower", id.0);
        self.trace.record(self.now, || What::Partition { cut });
    }

    /// The extra fsync time of node `id`'s disk.
    pub fn disk_delay(&self, id: NodeId) -> Duration {
        self.hosts[self.index(id)].slow_disk
    }

    fn cut_link(&mut self, a: usize, b: usize) {
        if self.net.cut(a, b) {
            // A fifo connection cannot survive losing one direction.
            self.break_link(a, b);
        }
    }

    /// Restores every link: no cuts, and no link's own loss
    /// ([`Sim::set_link_loss`]; the network's configured loss stays).
    pub fn heal(&mut self) {
        if self.net.partitioned() {
            self.net.heal();
            self.trace.mix_u64s(&[11, self.now.as_nanos()]);
            self.trace.record(self.now, || What::Heal);
        }
    }

    pub(crate) fn schedule_faults(&mut self, start: Instant) {
        let f = &self.config.faults;
        if f.kind == Faults::None {
            return;
        }
        if f.kind == Faults::All {
            let (loss, dup) = (f.loss.max(self.config.network.loss), f.duplicate.max(self.config.network.duplicate));
            self.net.set_loss(loss, dup);
        }
        let first = start + self.exponential(self.config.faults.mean_interval);
        self.queue.push(first, Event::Fault(FaultEvent::Next));
    }

    fn exponential(&mut self, mean: Duration) -> Duration {
        let u = self.rng.unit().max(1e-9);
        Duration::from_nanos((-(u.ln()) * mean.as_nanos() as f64) as u64)
    }

    fn outage(&mut self) -> Duration {
        Duration::from_nanos(
            self.rng.range(Duration::from_millis(5).as_nanos(), self.config.faults.max_outage.as_nanos()),
        )
    }

    pub(crate) fn fault(&mut self, event: FaultEvent) {
        match event {
            FaultEvent::Restart(i) => {
                if self.load_running {
                    self.restart(self.members[i]);
                }
            }
            FaultEvent::Heal => {
                if self.load_running {
                    self.heal();
                }
            }
            FaultEvent::Thaw(i) => {
                if self.load_running {
                    self.thaw(self.members[i]);
                }
            }
            FaultEvent::Next => {
                if !self.load_running {
                    return;
                }
                self.inject_random_fault();
                let next = self.now + self.exponential(self.config.faults.mean_interval);
                self.queue.push(next, Event::Fault(FaultEvent::Next));
            }
        }
    }

    fn inject_random_fault(&mut self) {
        let crash = match self.config.faults.kind {
            Faults::None => return,
            Faults::Crash => true,
            Faults::Partition => false,
            Faults::All => {
                if self.rng.chance(self.config.faults.pauses) {
                    return self.pause_a_node();
                }
                self.rng.chance(0.5)
            }
        };
        if crash {
            let Some(victim) = self.random_node(|sim, i| sim.protos[i].is_some()) else { return };
            let p = self.config.faults.late_link_down;
            // (No draw at all when no crash is a machine's: runs keep the schedules they had before.)
            let down = if p > 0.0 && self.rng.chance(p) {
                // A machine's peers hear of it once it is back and answers
                // their next write with a reset.
                let down = self.outage();
                let late = down + Duration::from_nanos(self.rng.range(0, crate::config::LATE_LINK_DOWN.as_nanos()));
                self.crash_noticed_late(self.members[victim], late);
                down
            } else {
                self.crash(self.members[victim]);
                self.outage()
            };
            let back = self.now + down;
            self.queue.push(back, Event::Fault(FaultEvent::Restart(victim)));
        } else {
            if self.net.partitioned() {
                return; // one partition at a time; it heals on its own schedule
            }
            let n = self.hosts.len();
            if self.rng.chance(0.25) && n > 1 {
                let from = self.rng.index(n);
                let to = (from + 1 + self.rng.index(n - 1)) % n;
                self.cut_one_way(self.members[from], self.members[to]);
            } else {
                let mut side: Vec<NodeId> = Vec::new();
                let mut rest: Vec<NodeId> = Vec::new();
                for id in self.members.clone() {
                    if self.rng.chance(0.5) {
                        side.push(id);
                    } else {
                        rest.push(id);
                    }
                }
                if side.is_empty() || rest.is_empty() {
                    let i = self.rng.index(n);
                    side = vec![self.members[i]];
                    rest = self.members.iter().copied().filter(|m| *m != side[0]).collect();
                }
                self.partition(&[&side, &rest]);
            }
            let heal = self.now + self.outage();
            self.queue.push(heal, Event::Fault(FaultEvent::Heal));
        }
    }

    /// A node index drawn at random among those `eligible` says yes to.
    fn random_node(&mut self, eligible: impl Fn(&Self, usize) -> bool) -> Option<usize> {
        let nodes: Vec<usize> = (0..self.hosts.len()).filter(|&i| eligible(self, i)).collect();
        (!nodes.is_empty()).then(|| nodes[self.rng.index(nodes.len())])
    }

    /// Freezes a running node for an outage (a stopped process: its peers
    /// see only silence, and it resumes with everything that waited).
    fn pause_a_node(&mut self) {
        let Some(victim) = self.random_node(|sim, i| sim.protos[i].is_some() && !sim.hosts[i].frozen) else { return };
        self.freeze(self.members[victim]);
        let back = self.now + self.outage();
        self.queue.push(back, Event::Fault(FaultEvent::Thaw(victim)));
    }
}
