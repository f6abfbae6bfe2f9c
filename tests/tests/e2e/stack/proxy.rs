//! nginx driven by `deploy::proxy` directly: a file that is right on disk but
//! not served (the worker died between writing it and reloading) is served
//! by the next switch.

use hostkit_deploy::proxy::Proxy;
use hostkit_proto::Domain;
use hostkit_tests::{HttpResponder, TestNginx};

#[tokio::test]
async fn a_written_but_unloaded_file_is_loaded_by_the_next_switch() {
    let nginx = TestNginx::new().await;
    let proxy = Proxy::new(nginx.proxy_config());
    let domain: Domain = "proxy-test.example".parse().unwrap();
    let (one, two) = (
        HttpResponder::start("one").await,
        HttpResponder::start("two").await,
    );
    let up = |r: &HttpResponder| vec![format!("127.0.0.1:{}", r.port())];

    assert!(
        proxy
            .switch(&domain, &up(&one), &[])
            .await
            .expect("first switch")
    );
    assert_eq!(
        nginx.get(domain.as_str(), "/").await.unwrap(),
        (200, "one".into())
    );

    // The file for `two` is written, but nginx was never told.
    let site = hostkit_deploy::proxy::Site {
        upstreams: up(&two),
        redirects: Vec::new(),
    };
    std::fs::write(proxy.conf_path(&domain), proxy.render(&domain, &site).await).unwrap();
    assert_eq!(
        nginx.get(domain.as_str(), "/").await.unwrap(),
        (200, "one".into())
    );

    assert!(
        proxy.switch(&domain, &up(&two), &[]).await.expect("switch"),
        "the switch must reload"
    );
    assert_eq!(
        nginx.get(domain.as_str(), "/").await.unwrap(),
        (200, "two".into())
    );
    // Now it is served: the same switch again changes nothing.
    assert!(
        !proxy
            .switch(&domain, &up(&two), &[])
            .await
            .expect("no-op switch")
    );
}
