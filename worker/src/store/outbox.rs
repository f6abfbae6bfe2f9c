//! The outbox (messages waiting for NATS) and the node's event sequence.
//!
//! Events that cannot be published (NATS down) are pushed to the outbox and
//! delivered oldest first once NATS is back; each entry keeps the
//! `Nats-Msg-Id` it was first published with, so a delivery that did get
//! through before is dropped by the stream's de-duplication.
//!
//! Event sequence numbers ([`Store::next_event_seq`]) are reserved in the
//! `meta` table in blocks of [`SEQ_BLOCK`], then handed out from memory: a
//! number costs a durable write only once per block, and numbers stay
//! strictly increasing across restarts (the unused rest of a block is
//! skipped).

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::error::{Fail, Res, StoreError};
use super::sql::{self, now_ms, to_i64};
use super::types::OutboxEntry;

/// Sequence numbers reserved per durable write.
pub(super) const SEQ_BLOCK: u64 = 1024;

/// The `meta` key holding the first event sequence number not reserved yet.
const SEQ_KEY: &str = "event_seq_next";

/// Reserved sequence numbers not handed out yet: `next .. end`.
#[derive(Debug, Default)]
pub(super) struct SeqBlock {
    next: u64,
    end: u64,
}

impl Store {
    /// Queues a message; answers its id. Entries are delivered in id order.
    pub async fn outbox_push(
        &self,
        subject: String,
        msg_id: String,
        payload: Vec<u8>,
    ) -> Result<i64, StoreError> {
        self.write("outbox push", move |tx| {
            push(tx, &subject, &msg_id, &payload)
        })
        .await
    }

    /// Up to `limit` queued messages, oldest first.
    pub async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read("outbox pending", move |conn| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut stmt = conn.prepare(
                "SELECT id, subject, msg_id, payload, created_at FROM outbox
                 ORDER BY id LIMIT ?1",
            )?;
            let entries = stmt
                .query_map([limit], |row| {
                    Ok(OutboxEntry {
                        id: row.get(0)?,
                        subject: row.get(1)?,
                        msg_id: row.get(2)?,
                        payload: row.get(3)?,
                        created_at: sql::time(row, 4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(entries)
        })
        .await
    }

    /// Removes a delivered message; answers whether it was there.
    #[cfg(test)]
    pub async fn outbox_delete(&self, id: i64) -> Result<bool, StoreError> {
        self.write("outbox delete", move |tx| {
            Ok(tx.execute("DELETE FROM outbox WHERE id = ?1", [id])? > 0)
        })
        .await
    }

    /// Removes every delivered message up to and including `id` (the outbox
    /// is delivered in id order): one commit for a whole batch.
    pub async fn outbox_delete_through(&self, id: i64) -> Result<usize, StoreError> {
        self.write("outbox delete through", move |tx| {
            Ok(tx.execute("DELETE FROM outbox WHERE id <= ?1", [id])?)
        })
        .await
    }

    /// How many messages are queued.
    pub async fn outbox_len(&self) -> Result<u64, StoreError> {
        self.read("outbox length", |conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM outbox", [], |row| row.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// The node's next event sequence number (from 1): strictly increasing
    /// across calls, clones and restarts, with gaps after a restart. Use one
    /// open [`Store`] per database for this guarantee.
    pub async fn next_event_seq(&self) -> Result<u64, StoreError> {
        let mut block = self.inner.seq.lock().await;
        if block.next >= block.end {
            let start = self
                .write("reserve event sequence numbers", |tx| {
                    reserve(tx, SEQ_BLOCK)
                })
                .await?;
            *block = SeqBlock {
                next: start,
                end: start + SEQ_BLOCK,
            };
        }
        let seq = block.next;
        block.next += 1;
        Ok(seq)
    }
}

/// See [`Store::outbox_push`].
pub(super) fn push(conn: &Connection, subject: &str, msg_id: &str, payload: &[u8]) -> Res<i64> {
    conn.execute(
        "INSERT INTO outbox (subject, msg_id, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![subject, msg_id, payload, now_ms()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Reserves `count` sequence numbers; answers the first.
fn reserve(conn: &Connection, count: u64) -> Res<u64> {
    let stored: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [SEQ_KEY], |row| {
            row.get(0)
        })
        .optional()?;
    let start = match stored {
        None => 1,
        Some(v) => u64::try_from(v).map_err(|_| Fail::Corrupt {
            what: "event sequence",
            value: v.to_string(),
        })?,
    };
    let end = start.checked_add(count).ok_or(Fail::Range {
        what: "event sequence",
        value: start,
    })?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![SEQ_KEY, to_i64("event sequence", end)?],
    )?;
    Ok(start)
}
