//! openraft's types in their protobuf form (`proto/raft.proto`), the one
//! encoding of Raft records on disk and of Raft messages between nodes.
//!
//! Decoding checks what protobuf cannot: a required message that is
//! absent, or a membership openraft refuses, is corrupt data (on disk) or
//! a bad request (from the network), never a default value.

use std::collections::{BTreeMap, BTreeSet};

use openraft::alias::{EntryOf, LogIdOf, SnapshotMetaOf, StoredMembershipOf, VoteOf};
use openraft::impls::leader_id_adv::LeaderId;
use openraft::raft::AppendEntriesRequest;
use openraft::{BasicNode, EntryPayload};

use super::transport::proto;
use super::{Command, GroupId, ShardRaft};
use crate::error::{Error, Result};

pub type Membership = openraft::Membership<u64, BasicNode>;

/// A message that must be there.
fn required<T>(value: Option<T>, what: &str) -> Result<T> {
    value.ok_or_else(|| Error::Corrupt(format!("raft record: no {what}")))
}

pub fn log_id_to(id: &LogIdOf<ShardRaft>) -> proto::LogId {
    proto::LogId {
        term: id.leader_id.term,
        node_id: id.leader_id.node_id,
        index: id.index,
    }
}

pub fn log_id_from(id: proto::LogId) -> LogIdOf<ShardRaft> {
    LogIdOf::<ShardRaft>::new(
        LeaderId {
            term: id.term,
            node_id: id.node_id,
        },
        id.index,
    )
}

pub fn opt_log_id_to(id: &Option<LogIdOf<ShardRaft>>) -> Option<proto::LogId> {
    id.as_ref().map(log_id_to)
}

pub fn opt_log_id_from(id: Option<proto::LogId>) -> Option<LogIdOf<ShardRaft>> {
    id.map(log_id_from)
}

pub fn vote_to(vote: &VoteOf<ShardRaft>) -> proto::Vote {
    proto::Vote {
        term: vote.leader_id.term,
        node_id: vote.leader_id.node_id,
        committed: vote.committed,
    }
}

pub fn vote_from(vote: Option<proto::Vote>) -> Result<VoteOf<ShardRaft>> {
    let vote = required(vote, "vote")?;
    Ok(VoteOf::<ShardRaft> {
        leader_id: LeaderId {
            term: vote.term,
            node_id: vote.node_id,
        },
        committed: vote.committed,
    })
}

pub fn membership_to(membership: &Membership) -> proto::Membership {
    proto::Membership {
        configs: membership
            .get_joint_config()
            .iter()
            .map(|voters| proto::VoterSet {
                voters: voters.iter().copied().collect(),
            })
            .collect(),
        nodes: membership
            .nodes()
            .map(|(&id, node)| (id, node.addr.clone()))
            .collect(),
    }
}

pub fn membership_from(membership: Option<proto::Membership>) -> Result<Membership> {
    let membership = required(membership, "membership")?;
    let configs: Vec<BTreeSet<u64>> = membership
        .configs
        .into_iter()
        .map(|set| set.voters.into_iter().collect())
        .collect();
    let nodes: BTreeMap<u64, BasicNode> = membership
        .nodes
        .into_iter()
        .map(|(id, addr)| (id, BasicNode { addr }))
        .collect();
    Membership::new(configs, nodes)
        .map_err(|e| Error::Corrupt(format!("raft record: a bad membership: {e}")))
}

pub fn stored_membership_to(stored: &StoredMembershipOf<ShardRaft>) -> proto::StoredMembership {
    proto::StoredMembership {
        log_id: opt_log_id_to(stored.log_id()),
        membership: Some(membership_to(stored.membership())),
    }
}

pub fn stored_membership_from(
    stored: Option<proto::StoredMembership>,
) -> Result<StoredMembershipOf<ShardRaft>> {
    let stored = required(stored, "stored membership")?;
    Ok(StoredMembershipOf::<ShardRaft>::new(
        opt_log_id_from(stored.log_id),
        membership_from(stored.membership)?,
    ))
}

pub fn entry_to(entry: &EntryOf<ShardRaft>) -> proto::Entry {
    use proto::entry::Payload;
    let payload = match &entry.payload {
        EntryPayload::Blank => Payload::Blank(proto::Blank {}),
        EntryPayload::Normal(command) => Payload::Command(command.0.clone()),
        EntryPayload::Membership(membership) => Payload::Membership(membership_to(membership)),
    };
    proto::Entry {
        log_id: Some(log_id_to(&entry.log_id)),
        payload: Some(payload),
    }
}

pub fn entry_from(entry: proto::Entry) -> Result<EntryOf<ShardRaft>> {
    use proto::entry::Payload;
    let payload = match required(entry.payload, "entry payload")? {
        Payload::Blank(_) => EntryPayload::Blank,
        Payload::Command(bytes) => EntryPayload::Normal(Command(bytes)),
        Payload::Membership(m) => EntryPayload::Membership(membership_from(Some(m))?),
    };
    Ok(EntryOf::<ShardRaft> {
        log_id: log_id_from(required(entry.log_id, "entry log id")?),
        payload,
    })
}

pub fn append_request_to(
    group: GroupId,
    rpc: &AppendEntriesRequest<ShardRaft>,
) -> proto::AppendEntriesRequest {
    proto::AppendEntriesRequest {
        group,
        vote: Some(vote_to(&rpc.vote)),
        prev_log_id: opt_log_id_to(&rpc.prev_log_id),
        entries: rpc.entries.iter().map(entry_to).collect(),
        leader_commit: opt_log_id_to(&rpc.leader_commit),
    }
}

pub fn append_request_from(
    message: proto::AppendEntriesRequest,
) -> Result<AppendEntriesRequest<ShardRaft>> {
    Ok(AppendEntriesRequest {
        vote: vote_from(message.vote)?,
        prev_log_id: opt_log_id_from(message.prev_log_id),
        entries: message
            .entries
            .into_iter()
            .map(entry_from)
            .collect::<Result<_>>()?,
        leader_commit: opt_log_id_from(message.leader_commit),
    })
}

pub fn snapshot_meta_to(meta: &SnapshotMetaOf<ShardRaft>) -> proto::SnapshotMeta {
    proto::SnapshotMeta {
        last_log_id: opt_log_id_to(&meta.last_log_id),
        last_membership: Some(stored_membership_to(&meta.last_membership)),
    }
}

pub fn snapshot_meta_from(meta: Option<proto::SnapshotMeta>) -> Result<SnapshotMetaOf<ShardRaft>> {
    let meta = required(meta, "snapshot meta")?;
    Ok(SnapshotMetaOf::<ShardRaft> {
        last_log_id: opt_log_id_from(meta.last_log_id),
        last_membership: stored_membership_from(meta.last_membership)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::log_id;
    use prost::Message;

    fn membership() -> Membership {
        let nodes = (1..=4u64).map(|id| {
            (
                id,
                BasicNode {
                    addr: format!("127.0.0.1:{}", 7000 + id),
                },
            )
        });
        Membership::new(
            vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3, 4])],
            nodes.collect::<BTreeMap<_, _>>(),
        )
        .unwrap()
    }

    #[test]
    fn every_record_comes_back_as_it_went_through_its_bytes() {
        let entries = [
            EntryOf::<ShardRaft> {
                log_id: log_id::<ShardRaft>(3, 2, 17),
                payload: EntryPayload::Blank,
            },
            EntryOf::<ShardRaft> {
                log_id: log_id::<ShardRaft>(u64::MAX, 9, u64::MAX),
                payload: EntryPayload::Normal(Command(vec![0, 1, 255])),
            },
            EntryOf::<ShardRaft> {
                log_id: log_id::<ShardRaft>(1, 1, 1),
                payload: EntryPayload::Membership(membership()),
            },
        ];
        for entry in entries {
            let bytes = entry_to(&entry).encode_to_vec();
            let back = entry_from(proto::Entry::decode(bytes.as_slice()).unwrap()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{entry:?}"));
        }
        let vote = VoteOf::<ShardRaft>::new_committed(5, 3);
        assert_eq!(vote_from(Some(vote_to(&vote))).unwrap(), vote);
        let stored =
            StoredMembershipOf::<ShardRaft>::new(Some(log_id::<ShardRaft>(2, 1, 9)), membership());
        let meta = SnapshotMetaOf::<ShardRaft> {
            last_log_id: Some(log_id::<ShardRaft>(2, 1, 12)),
            last_membership: stored.clone(),
        };
        let back = snapshot_meta_from(Some(snapshot_meta_to(&meta))).unwrap();
        assert_eq!(back, meta);
        assert_eq!(
            stored_membership_from(Some(stored_membership_to(&stored))).unwrap(),
            stored
        );
    }

    #[test]
    fn a_missing_part_is_an_error_not_a_default() {
        assert!(matches!(vote_from(None), Err(Error::Corrupt(_))));
        let no_payload = proto::Entry {
            log_id: Some(log_id_to(&log_id::<ShardRaft>(1, 1, 1))),
            payload: None,
        };
        assert!(entry_from(no_payload).is_err());
        // A joint config that names a voter without an address.
        let bad = proto::Membership {
            configs: vec![proto::VoterSet { voters: vec![1, 2] }],
            nodes: [(1, "a".to_string())].into_iter().collect(),
        };
        assert!(membership_from(Some(bad)).is_err());
    }
}
