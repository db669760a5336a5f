//! The acknowledgement as it travels: written by a consuming cluster, read by the origin.
//!
//! The origin reads every ack of every change it published; reading each into owned `String`s
//! (five per ack, more for its tagged status) made the ack reader allocate for every field of a
//! record of a thousand acks only to compare and drop them. [`AckView`] reads the same JSON with
//! its strings borrowed from the record; the status table copies a string only when it keeps
//! one.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::model::Hlc;

/// An apply acknowledgement, written by a consuming cluster to the origin's acks topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The change.
    pub event_id: String,
    /// Its timestamp (a newer change of the entity replaces an older one's status).
    pub hlc: Hlc,
    /// Its entity type.
    pub entity_type: String,
    /// Its entity id.
    pub entity_id: String,
    /// The cluster that processed it.
    pub cluster: String,
    /// What happened there.
    pub status: TargetStatus,
}

/// An [`Ack`] as read from an ack record: its strings borrowed from the record where they need
/// no unescaping, so reading a record of a thousand acks allocates for none of them (the
/// reader applies each to the status table and drops it).
#[derive(Debug, Deserialize)]
pub(crate) struct AckView<'a> {
    #[serde(borrow)]
    pub(crate) event_id: Cow<'a, str>,
    pub(crate) hlc: Hlc,
    #[serde(borrow)]
    pub(crate) entity_type: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) entity_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) cluster: Cow<'a, str>,
    #[serde(borrow)]
    status: StatusView<'a>,
}

/// A [`TargetStatus`] as read: `{"state": "completed", "effect": "applied"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusView<'a> {
    state: State,
    #[serde(borrow, default)]
    effect: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum State {
    Pending,
    Completed,
    Failed,
}

impl<'a> AckView<'a> {
    /// An ack read from a compact record: no `status` means completed with effect `applied`.
    pub(crate) fn new(
        event_id: Cow<'a, str>,
        hlc: Hlc,
        entity_type: Cow<'a, str>,
        entity_id: Cow<'a, str>,
        cluster: Cow<'a, str>,
        status: Option<StatusView<'a>>,
    ) -> Self {
        let status = status.unwrap_or(StatusView {
            state: State::Completed,
            effect: Some(Cow::Borrowed("applied")),
            reason: None,
        });
        Self {
            event_id,
            hlc,
            entity_type,
            entity_id,
            cluster,
            status,
        }
    }

    /// Why this ack is not a valid [`Ack`] (a completed status without its effect, a failed one
    /// without its reason), if it is not.
    pub(crate) fn invalid(&self) -> Option<&'static str> {
        match (self.status.state, &self.status.effect, &self.status.reason) {
            (State::Completed, None, _) => Some("a completed ack has no `effect`"),
            (State::Failed, _, None) => Some("a failed ack has no `reason`"),
            _ => None,
        }
    }

    /// Whether `state` already is this ack's status.
    pub(crate) fn is(&self, state: &TargetStatus) -> bool {
        match (state, self.status.state) {
            (TargetStatus::Pending, State::Pending) => true,
            (TargetStatus::Completed { effect }, State::Completed) => {
                self.status.effect.as_deref() == Some(effect.as_str())
            }
            (TargetStatus::Failed { reason }, State::Failed) => {
                self.status.reason.as_deref() == Some(reason.as_str())
            }
            _ => false,
        }
    }

    /// The owned status.
    pub(crate) fn target_status(&self) -> TargetStatus {
        let text = |t: &Option<Cow<'_, str>>| t.as_deref().unwrap_or_default().to_string();
        match self.status.state {
            State::Pending => TargetStatus::Pending,
            State::Completed => TargetStatus::Completed {
                effect: text(&self.status.effect),
            },
            State::Failed => TargetStatus::Failed {
                reason: text(&self.status.reason),
            },
        }
    }

    /// The owned ack.
    #[cfg(test)]
    pub(crate) fn to_ack(&self) -> Ack {
        Ack {
            event_id: self.event_id.to_string(),
            hlc: self.hlc,
            entity_type: self.entity_type.to_string(),
            entity_id: self.entity_id.to_string(),
            cluster: self.cluster.to_string(),
            status: self.target_status(),
        }
    }
}

/// The state of one change in one target cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TargetStatus {
    /// Not acknowledged yet.
    Pending,
    /// Processed: `effect` says what it did (`applied`, `merged`, `superseded`, `duplicate`).
    Completed {
        /// The effect.
        effect: String,
    },
    /// Dead-lettered there.
    Failed {
        /// Why.
        reason: String,
    },
}
