//! Scaling the main service 1 → 3 → 1: each replica gets its own host port
//! and nginx balances across them.

use super::site::{Site, web_only};

#[tokio::test]
async fn scale_one_to_three_to_one() {
    let site = Site::new().await;
    let one = site.deploy(&web_only("v1", 1)).await.expect("deploy");
    let first = one.services["web"].replicas[0].id.clone();

    let three = site.deploy(&web_only("v1", 3)).await.expect("scale to 3");
    let replicas = &three.services["web"].replicas;
    assert_eq!(replicas.len(), 3);
    assert!(
        replicas.iter().any(|r| r.id == first),
        "scaling recreated the first replica"
    );
    let mut ports: Vec<u16> = replicas.iter().map(|r| r.host_ports[0]).collect();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    assert_eq!(three.upstreams.len(), 3);
    let conf = std::fs::read_to_string(site.nginx.conf_dir().join(format!("{}.conf", site.domain)))
        .unwrap();
    for port in &ports {
        assert!(conf.contains(&format!("127.0.0.1:{port}")), "{conf}");
    }
    // nginx spreads requests over the replicas (round robin): each hostname appears.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let (status, body) = site.get("/cgi-bin/hostname").await.expect("through nginx");
        assert_eq!(status, 200);
        seen.insert(body);
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    let back = site.deploy(&web_only("v1", 1)).await.expect("scale to 1");
    assert_eq!(back.services["web"].replicas.len(), 1);
    assert_eq!(site.containers().await.len(), 1);
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}
