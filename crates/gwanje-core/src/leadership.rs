//! Where this replica stands in a cluster of controllers. Only the leader
//! orders route changes, each carrying its fence (the revision its election
//! key was created at); a new leader orders nothing until every path of a
//! group has been probed since it took over; a follower takes the route the
//! leader's orders left as the truth. Whether this replica leads is decided
//! outside the core (by the coordination store, through the session's
//! deadline on the monotonic clock); the core only learns it, as an input,
//! so a replay reproduces what the replica did in each role.

use super::coordination::{Coordination, CoordinationFault};
use super::effect::{Effect, Event};
use std::collections::BTreeSet;

use super::types::{PathName, Timestamp};

/// This replica's role as the core tracks it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Leadership {
    /// The fence while leading.
    pub fence: Option<u64>,
    /// When it started leading: paths need results newer than this.
    pub since: Option<Timestamp>,
    /// Why coordination is lost, while it is.
    pub lost: Option<CoordinationFault>,
    /// Paths probed since this leadership began.
    #[serde(default)]
    pub fresh: BTreeSet<PathName>,
}

impl Leadership {
    /// A replica that has not heard from the store yet: it follows.
    pub fn new() -> Self {
        Leadership {
            fence: None,
            since: None,
            lost: None,
            fresh: BTreeSet::new(),
        }
    }

    /// The fence this replica may order with, if it leads.
    pub fn fence(&self) -> Option<u64> {
        self.fence
    }

    /// Notes a result through `path` stamped `at`: evidence gathered under
    /// this leadership (its own probes, not what it inherited) makes the
    /// path fresh.
    pub fn saw(&mut self, path: &PathName, at: Timestamp) {
        if self.since.is_some_and(|s| at >= s) && !self.fresh.contains(path) {
            self.fresh.insert(path.clone());
        }
    }

    /// Whether this replica may order a change among `paths`: it leads and
    /// has probed every one of them since it took over.
    pub fn may_order(&self, paths: &[PathName]) -> bool {
        self.fence.is_some() && paths.iter().all(|p| self.fresh.contains(p))
    }

    /// Takes what the session reports; says what changed.
    pub fn apply(&mut self, now: Timestamp, c: Coordination, out: &mut Vec<Effect>) {
        let was_lost = self.lost;
        let had = self.fence;
        match c {
            Coordination::Following => {
                self.lost = None;
                self.fence = None;
                self.since = None;
                if let Some(fence) = had {
                    out.push(Effect::Event(Event::LeadershipLost { fence, fault: None }));
                }
            }
            Coordination::Leading { fence } => {
                self.lost = None;
                if had != Some(fence) {
                    if let Some(old) = had {
                        out.push(Effect::Event(Event::LeadershipLost {
                            fence: old,
                            fault: None,
                        }));
                    }
                    self.fence = Some(fence);
                    self.since = Some(now);
                    self.fresh.clear();
                    out.push(Effect::Event(Event::LeadershipAcquired { fence }));
                }
            }
            Coordination::Lost { fault } => {
                self.fence = None;
                self.since = None;
                if let Some(fence) = had {
                    out.push(Effect::Event(Event::LeadershipLost {
                        fence,
                        fault: Some(fault),
                    }));
                }
                if was_lost.is_none() {
                    out.push(Effect::Event(Event::CoordinationLost { fault }));
                }
                self.lost = Some(fault);
                return;
            }
        }
        if was_lost.is_some() {
            out.push(Effect::Event(Event::CoordinationRestored));
        }
    }
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_leader_orders_only_after_probing_every_path_itself() {
        let (a, b) = (PathName::new("a"), PathName::new("b"));
        let paths = [a.clone(), b.clone()];
        let mut l = Leadership::new();
        l.saw(&a, Timestamp(5_000));
        assert!(!l.may_order(&paths), "a follower never orders");
        l.apply(
            Timestamp(1_000),
            Coordination::Leading { fence: 7 },
            &mut Vec::new(),
        );
        l.saw(&a, Timestamp(999));
        l.saw(&b, Timestamp(1_200));
        assert!(!l.may_order(&paths), "a's result predates the takeover");
        l.saw(&a, Timestamp(1_000));
        assert!(l.may_order(&paths));
    }
}

#[cfg(test)]
mod transitions {
    use super::*;

    fn events(l: &mut Leadership, now: u64, c: Coordination) -> Vec<Effect> {
        let mut out = Vec::new();
        l.apply(Timestamp(now), c, &mut out);
        out
    }

    #[test]
    fn losing_the_store_while_leading_steps_down_and_pages_once() {
        let mut l = Leadership::new();
        assert_eq!(
            events(&mut l, 1, Coordination::Leading { fence: 9 }),
            vec![Effect::Event(Event::LeadershipAcquired { fence: 9 })]
        );
        let lost = Coordination::Lost {
            fault: CoordinationFault::DeadlinePassed,
        };
        assert_eq!(
            events(&mut l, 2, lost.clone()),
            vec![
                Effect::Event(Event::LeadershipLost {
                    fence: 9,
                    fault: Some(CoordinationFault::DeadlinePassed)
                }),
                Effect::Event(Event::CoordinationLost {
                    fault: CoordinationFault::DeadlinePassed
                })
            ]
        );
        assert_eq!(l.fence(), None);
        assert!(events(&mut l, 3, lost).is_empty(), "one page per loss");
        assert_eq!(
            events(&mut l, 4, Coordination::Following),
            vec![Effect::Event(Event::CoordinationRestored)]
        );
    }

    #[test]
    fn a_new_term_is_a_new_leadership() {
        let mut l = Leadership::new();
        events(&mut l, 1, Coordination::Leading { fence: 9 });
        assert!(events(&mut l, 2, Coordination::Leading { fence: 9 }).is_empty());
        let out = events(&mut l, 3, Coordination::Leading { fence: 12 });
        assert_eq!(out.len(), 2);
        assert_eq!(l.fence(), Some(12));
        assert!(
            l.fresh.is_empty(),
            "evidence from the old term is not fresh"
        );
    }
}
