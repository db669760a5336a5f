//! Deleting an invalidated path's values from Redis (every node of a cluster).
//!
//! A value left in Redis after `invalidate` is harmless to processes that got the message
//! (their tombstones reject it) but would be served to a process that starts later. So the
//! sender deletes every value key of the path (or prefix): `SCAN MATCH` on each master, then
//! `UNLINK`. This runs in the background, off the call path, bounded by [`PURGE_TIMEOUT`].

use std::time::Duration;

use redis::ConnectionAddr;

use super::conn::{Conn, Endpoint, tcp};
use crate::config::L2Target;

/// Longest a purge may take (a large keyspace is scanned in steps of 1000 keys).
pub(crate) const PURGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Deletes every key matching `pattern` through `conn`; the keys are found on each master.
pub(crate) async fn purge(
    endpoint: &Endpoint,
    conn: &mut Conn,
    pattern: &str,
) -> redis::RedisResult<u64> {
    let nodes = match (&endpoint.target, &mut *conn) {
        (L2Target::Cluster(_), conn) => masters(conn).await?,
        _ => endpoint.servers(),
    };
    let mut deleted = 0;
    for addr in nodes {
        let client = endpoint.client(addr)?;
        let mut node = client.get_multiplexed_async_connection().await?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut node)
                .await?;
            for key in &keys {
                // Through the main connection: a slot moving right now is followed (ASK/MOVED).
                let n: u64 = conn.query(redis::cmd("UNLINK").arg(key)).await?;
                deleted += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(deleted)
}

/// The cluster's reachable masters, from `CLUSTER NODES`.
async fn masters(conn: &mut Conn) -> redis::RedisResult<Vec<ConnectionAddr>> {
    let text: String = conn
        .query(&redis::cmd("CLUSTER").arg("NODES").to_owned())
        .await?;
    Ok(parse_masters(&text))
}

/// `<id> <ip:port@cport> <flags> ...` lines whose flags say master and not fail.
fn parse_masters(text: &str) -> Vec<ConnectionAddr> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _id = fields.next()?;
            let addr = fields.next()?;
            let flags = fields.next()?;
            let is_live_master = flags.split(',').any(|f| f == "master")
                && !flags
                    .split(',')
                    .any(|f| f == "fail" || f == "fail?" || f == "noaddr");
            if !is_live_master {
                return None;
            }
            tcp(addr.split('@').next()?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let text = "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                    b2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922\n\
                    c3 127.0.0.1:7002@17002 master,fail - 0 0 3 connected\n\
                    d4 127.0.0.1:7003@17003 slave a1 0 0 1 connected\n";
        let got = parse_masters(text);
        assert_eq!(
            got,
            vec![
                ConnectionAddr::Tcp("127.0.0.1".into(), 7000),
                ConnectionAddr::Tcp("127.0.0.1".into(), 7001)
            ]
        );
    }
}
