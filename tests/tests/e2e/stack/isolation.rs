//! Domains are isolated: a container of domain A cannot reach domain B's
//! services, by name or by IP, while it reaches its own.

use super::site::{Site, web_only};

#[tokio::test]
async fn a_container_of_one_domain_cannot_reach_another_domain() {
    let (a, b) = tokio::join!(Site::new(), Site::new());
    let (va, vb) = (web_only("v1", 1), web_only("v2", 1));
    let (ra, rb) = tokio::join!(a.deploy(&va), b.deploy(&vb));
    let (ra, rb) = (ra.expect("deploy a"), rb.expect("deploy b"));
    let a_web = &ra.services["web"].replicas[0];
    let b_web = &rb.services["web"].replicas[0];

    let b_inspect = b
        .docker
        .client()
        .inspect_container(&b_web.id, None)
        .await
        .expect("inspect b");
    let b_ip = b_inspect
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|n| {
            n.values()
                .find_map(|e| e.ip_address.clone())
                .filter(|ip| !ip.is_empty())
        })
        .expect("b has an address");

    // Positive control: A reaches itself by service name.
    assert_eq!(
        a.wget(&a_web.name, "web", 8080).await,
        Ok("web v1\n".to_string())
    );
    // B's container answers on its own address from inside B.
    assert_eq!(
        b.wget_ip(&b_web.name, &b_ip, 8080).await,
        Ok("web v2\n".to_string()),
        "B must answer on {b_ip} from inside"
    );

    let by_ip = a.wget_ip(&a_web.name, &b_ip, 8080).await;
    assert!(by_ip.is_err(), "A reached B by IP: {by_ip:?}");
    assert_eq!(
        a.resolve(&a_web.name, &b_web.name).await,
        None,
        "A resolves B's container name"
    );
    let by_name = a.wget(&a_web.name, &b_web.name, 8080).await;
    assert!(by_name.is_err(), "A reached B by name: {by_name:?}");
}
