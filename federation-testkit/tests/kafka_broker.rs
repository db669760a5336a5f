//! The testkit's real Kafka broker: ready means a topic can be created; kill, stop and restart
//! act on the JVM's own pid and keep the ports; dropping the handle leaves nothing behind.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use federation_testkit::kafka::{KafkaBroker, skip_without_java};

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would show state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

async fn accepts(port: u16) -> bool {
    tokio::net::TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_starts_kills_restarts_on_the_same_port_and_cleans_up() {
    if let Some(skip) = skip_without_java() {
        eprintln!("{skip}");
        return;
    }
    let broker = match KafkaBroker::start().await {
        Ok(broker) => broker,
        Err(e) => panic!("broker did not start: {e}"),
    };
    let port = broker.port();
    assert_eq!(broker.bootstrap_servers(), format!("127.0.0.1:{port}"));
    let pid = broker.pid().expect("running broker has a pid");
    assert!(alive(pid));
    assert!(Path::new(broker.dir()).join("server.properties").is_file());
    broker
        .create_topic("testkit.three", 3)
        .await
        .expect("topic with three partitions");
    // Creating it again is not an error (already exists counts as created).
    broker
        .create_topic("testkit.three", 3)
        .await
        .expect("idempotent");

    broker.kill();
    assert!(!alive(pid), "SIGKILL reaps the JVM at once");
    assert!(!broker.is_running());
    assert!(!accepts(port).await, "nothing listens after a kill");
    assert!(broker.create_topic("testkit.down", 1).await.is_err());

    broker.restart().await.expect("restart on the same data");
    assert_eq!(broker.port(), port, "same port after restart");
    let second = broker.pid().expect("restarted broker has a pid");
    assert_ne!(second, pid);
    broker
        .create_topic("testkit.after", 1)
        .await
        .expect("usable after restart");

    broker.stop().await;
    assert!(!alive(second), "SIGTERM stops and reaps the JVM");
    broker.restart().await.expect("restart after a clean stop");
    let third = broker.pid().expect("pid");
    let dir = broker.dir().to_path_buf();
    drop(broker);
    assert!(!alive(third), "dropping the handle kills the JVM");
    assert!(!dir.exists(), "dropping the handle removes its folder");
}
