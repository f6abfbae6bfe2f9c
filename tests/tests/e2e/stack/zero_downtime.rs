//! A redeploy of the main service is start-first behind nginx: a client
//! looping requests through nginx sees no error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hostkit_deploy::engine::Change;

use super::site::{Site, web_only};

#[tokio::test]
async fn requests_through_nginx_see_no_error_during_a_redeploy() {
    let site = Arc::new(Site::new().await);
    site.deploy(&web_only("v1", 1)).await.expect("deploy v1");

    let done = Arc::new(AtomicBool::new(false));
    let client = {
        let (site, done) = (Arc::clone(&site), Arc::clone(&done));
        tokio::spawn(async move {
            let (mut ok, mut errors, mut bodies) =
                (0u32, Vec::new(), std::collections::BTreeSet::new());
            while !done.load(Ordering::Relaxed) {
                match site.get("/").await {
                    Ok((200, body)) => {
                        ok += 1;
                        bodies.insert(body);
                    }
                    other => errors.push(format!("{other:?}")),
                }
            }
            (ok, errors, bodies)
        })
    };
    let applied = site.deploy(&web_only("v2", 1)).await.expect("deploy v2");
    assert_eq!(applied.services["web"].change, Change::Recreated);
    // Keep requesting a little after the old replica is gone.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    let (ok, errors, bodies) = client.await.expect("client task");
    assert!(
        errors.is_empty(),
        "{} errors out of {}: {:?}",
        errors.len(),
        ok as usize + errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(ok > 20, "only {ok} requests ran");
    assert!(
        bodies.contains("web v1\n") && bodies.contains("web v2\n"),
        "{bodies:?}"
    );
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v2\n".to_string())
    );
}
