//! What a journal holds: one record per snapshot, input, timeout or
//! effect, as plain data (the framing is `format`'s).

use serde::{Deserialize, Serialize};

use crate::core::{Core, Effect, Input, Timestamp};

/// Why a segment starts with a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotReason {
    /// gwanje started (fresh, or restored from the journal).
    Start,
    /// The previous segment reached its size or age.
    Rotate,
    /// Records were lost before it (disk or queue trouble): replay cannot
    /// verify across it and restarts from this state.
    Resync,
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// The core's whole state at `at`.
    Snapshot {
        /// When.
        at: Timestamp,
        /// Why.
        reason: SnapshotReason,
        /// The state.
        core: Box<Core>,
    },
    /// An input fed to the core at `at`.
    Input {
        /// The time it was fed with.
        at: Timestamp,
        /// The input.
        input: Input,
    },
    /// The core's timers ran at `at`.
    Timeout {
        /// The time they ran with.
        at: Timestamp,
    },
    /// An effect the core produced.
    Effect {
        /// The effect.
        effect: Effect,
    },
    /// An effect a version-1 journal recorded (read, never written).
    #[serde(skip)]
    EffectV1 {
        /// What it decided.
        effect: Box<RecordedV1>,
    },
}

impl Record {
    /// The time it carries (effects carry theirs inside).
    pub fn at(&self) -> Option<Timestamp> {
        match self {
            Record::Snapshot { at, .. } | Record::Input { at, .. } | Record::Timeout { at } => {
                Some(*at)
            }
            Record::Effect { .. } | Record::EffectV1 { .. } => None,
        }
    }

    /// The effect it holds in today's shape, if it holds one (a version-1
    /// effect that carried words has none: it is only compared).
    pub fn effect(&self) -> Option<&Effect> {
        match self {
            Record::Effect { effect } => Some(effect),
            Record::EffectV1 { effect } => effect.upgraded.as_ref(),
            _ => None,
        }
    }
}

/// Records are read the way the writer puts them, the `record` tag first,
/// field by field; serde's own reading of a tagged enum first copies every
/// record into a generic tree, which was most of a replay's time. A record
/// whose tag is not first (written by hand) is gathered first, more slowly.
impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tag {
    Snapshot,
    Input,
    Timeout,
    Effect,
}

struct RecordVisitor;

impl<'de> serde::de::Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a journal record (an object with a `record` tag)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        use serde::de::{Error, IgnoredAny};
        let first: Option<std::borrow::Cow<'de, str>> = map.next_key()?;
        let tag = match first.as_deref() {
            Some("record") => map.next_value::<Tag>()?,
            Some(key) => {
                // The slow path: the fields gathered, the tag put first.
                let mut tree = serde_json::Map::new();
                tree.insert(key.to_string(), map.next_value()?);
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    tree.insert(k, v);
                }
                let tag = tree
                    .remove("record")
                    .ok_or_else(|| A::Error::missing_field("record"))?;
                let fields = std::iter::once(("record".to_string(), tag)).chain(tree);
                return RecordVisitor
                    .visit_map(
                        serde::de::value::MapDeserializer::<_, serde_json::Error>::new(fields),
                    )
                    .map_err(A::Error::custom);
            }
            None => return Err(A::Error::missing_field("record")),
        };
        let (mut at, mut reason, mut core, mut input, mut effect) = (None, None, None, None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "at" => at = Some(map.next_value::<Timestamp>()?),
                "reason" => reason = Some(map.next_value::<SnapshotReason>()?),
                "core" => core = Some(map.next_value::<Box<Core>>()?),
                "input" => input = Some(map.next_value::<Input>()?),
                "effect" => effect = Some(map.next_value::<Effect>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let need = |name: &'static str| A::Error::missing_field(name);
        Ok(match tag {
            Tag::Snapshot => Record::Snapshot {
                at: at.ok_or_else(|| need("at"))?,
                reason: reason.ok_or_else(|| need("reason"))?,
                core: core.ok_or_else(|| need("core"))?,
            },
            Tag::Input => Record::Input {
                at: at.ok_or_else(|| need("at"))?,
                input: input.ok_or_else(|| need("input"))?,
            },
            Tag::Timeout => Record::Timeout {
                at: at.ok_or_else(|| need("at"))?,
            },
            Tag::Effect => Record::Effect {
                effect: effect.ok_or_else(|| need("effect"))?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_whether_its_tag_comes_first_or_not() {
        let r = Record::Input {
            at: Timestamp(7),
            input: Input::JournalRecovered,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.starts_with("{\"record\":\"input\""), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
        let late = r#"{"at":7,"input":"JournalRecovered","record":"input"}"#;
        assert_eq!(serde_json::from_str::<Record>(late).unwrap(), r);
        let timeout = r#"{"record":"timeout","at":9,"note":"ignored"}"#;
        assert_eq!(
            serde_json::from_str::<Record>(timeout).unwrap(),
            Record::Timeout { at: Timestamp(9) }
        );
        let err = serde_json::from_str::<Record>(r#"{"record":"input","at":1}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `input`"), "{err}");
    }
}

/// An effect as a version-1 journal recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedV1 {
    /// The record's `effect` without its words (`summary`, `description`).
    pub(super) decided: serde_json::Value,
    /// The same effect in today's shape, when it carried no words (for
    /// analysis: route changes, health and path changes).
    pub upgraded: Option<Effect>,
}
