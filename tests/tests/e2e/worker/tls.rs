//! TLS end to end against a real ACME server (pebble, with a mock DNS that
//! points every name at 127.0.0.1): a deploy with a redirect domain gets a
//! certificate for both names over HTTP-01 through the test nginx, HTTPS
//! then reaches the container, plain HTTP answers 301 to https and the
//! redirect domain 301s to the domain; a name whose DNS does not point here
//! gives a `certificate_failed` event while plain HTTP keeps serving; a
//! certbot certificate is served until it is due, then replaced.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use hostkit_proto::job::JobSpec;
use hostkit_proto::{Domain, ErrorCode, Event, EventKind};
use hostkit_tests::https::https_request;
use hostkit_tests::{
    TestDocker, TestNats, TestNginx, TestPebble, TestWorker, fixtures, http_request,
};

use super::env::{Env, failure, succeeded_version, web};

/// An env whose worker obtains certificates from a fresh pebble that
/// validates against the env's nginx; `certbot_live` stands for
/// `/etc/letsencrypt/live`.
async fn env_with_pebble(certbot_live: Option<PathBuf>) -> (Env, TestPebble) {
    let nats = TestNats::new().await;
    let docker = TestDocker::new().await;
    let nginx = TestNginx::new().await;
    let pebble = TestPebble::start(nginx.listen_port()).await;
    let worker = TestWorker::start_with_acme(
        &nats,
        &docker,
        &nginx,
        pebble.directory_url(),
        pebble.ca_root_path(),
        certbot_live,
    )
    .await;
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let env = Env {
        nats,
        docker,
        nginx,
        worker,
        client,
        js,
        dir: tempfile::tempdir().expect("temp dir"),
    };
    (env, pebble)
}

/// Wait (bounded) for the next TLS event of the subscription.
async fn next_tls_event(events: &mut async_nats::Subscriber, pebble: &TestPebble) -> Event {
    let message = tokio::time::timeout(Duration::from_secs(90), events.next())
        .await
        .unwrap_or_else(|_| panic!("no TLS event within 90s; {}", pebble.logs()))
        .expect("the subscription ends only with the test");
    Event::from_slice(&message.payload).expect("events parse")
}

fn with_redirects(mut job: hostkit_proto::Job, names: Vec<Domain>) -> hostkit_proto::Job {
    if let JobSpec::Deploy(payload) = &mut job.spec {
        payload.options.redirect_domains = Some(names);
    }
    job
}

#[tokio::test]
async fn a_deploy_gets_a_certificate_over_acme_and_nginx_serves_https() {
    let (env, pebble) = env_with_pebble(None).await;
    let domain = env.domain();
    let www: Domain = format!("www.{domain}").parse().expect("valid name");
    let images = env.upload("web", vec![fixtures::web("v1")]).await;
    let mut tls_events = env
        .client
        .subscribe(env.worker.names.tls_events(&domain))
        .await
        .expect("subscribe to TLS events");

    let job = with_redirects(
        env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]),
        vec![www.clone()],
    );
    let (done, events) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 1, "{events:#?}");

    let issued = next_tls_event(&mut tls_events, &pebble).await;
    let EventKind::CertificateIssued {
        names,
        not_after,
        renewal,
    } = &issued.kind
    else {
        panic!(
            "expected certificate_issued, got {issued:?}; {}",
            pebble.logs()
        );
    };
    assert_eq!(names, &[domain.clone(), www.clone()]);
    assert!(!renewal);
    assert!(*not_after > chrono::Utc::now() + chrono::Duration::days(7));
    assert_eq!(issued.domain.as_ref(), Some(&domain));

    // HTTPS through nginx, trusting only pebble's issuing root.
    let root = pebble.issuing_root_pem().await;
    let tls = ("127.0.0.1", env.nginx.tls_port());
    let response = https_request(tls, domain.as_str(), "/", &root)
        .await
        .expect("HTTPS through nginx");
    assert_eq!((response.status, response.body.as_str()), (200, "web v1\n"));
    // The redirect domain is in the certificate and 301s to the domain.
    let response = https_request(tls, www.as_str(), "/a?b=1", &root)
        .await
        .expect("HTTPS for the redirect domain");
    assert_eq!(response.status, 301);
    assert_eq!(
        response.header("location"),
        Some(format!("https://{domain}/a?b=1").as_str())
    );

    // Plain HTTP: 301 to https for both names; the ACME location stays.
    let http = ("127.0.0.1", env.nginx.listen_port());
    for name in [&domain, &www] {
        let response = http_request(http, name.as_str(), "/x?y=1")
            .await
            .expect("HTTP through nginx");
        assert_eq!(response.status, 301, "{name}: {response:?}");
        assert_eq!(
            response.header("location"),
            Some(format!("https://{domain}/x?y=1").as_str()),
            "{name}"
        );
        let response = http_request(http, name.as_str(), "/.well-known/acme-challenge/none")
            .await
            .expect("HTTP through nginx");
        assert_eq!(
            response.status, 404,
            "{name}: the ACME location answers itself"
        );
    }

    // config.json lists the redirect domain; the account key is private.
    let config: hostkit_proto::view::DomainConfig = serde_json::from_slice(
        &std::fs::read(env.domain_dir(&domain).join("config.json")).expect("config.json"),
    )
    .expect("config.json parses");
    assert_eq!(config.redirect_domains, [www.to_string()]);
    assert_eq!(config.all_domains, [domain.to_string(), www.to_string()]);
    let acme_dir = env.worker.data_dir.path().join("acme");
    let account = std::fs::read_dir(&acme_dir)
        .expect("the account directory")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("the account file");
    let mode = std::fs::metadata(&account).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", account.display());

    // A redeploy without the option keeps the redirect domain and the
    // certificate (no new one is needed).
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    let (done, _) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 2);
    let response = https_request(tls, www.as_str(), "/", &root)
        .await
        .expect("HTTPS for the redirect domain after a redeploy");
    assert_eq!(response.status, 301);

    // Another domain cannot take the redirect domain.
    let other = env.domain();
    let job = with_redirects(
        env.deploy_job(&other, &web("hostkit-test/web:v1"), vec![images]),
        vec![www.clone()],
    );
    let (done, _) = env.run(&job).await;
    let (code, message) = failure(&done);
    assert_eq!(code, ErrorCode::DomainConflict, "{message}");
    assert!(
        message.contains(&format!("redirects to {domain}")),
        "{message}"
    );
}

#[tokio::test]
async fn a_name_not_pointing_here_fails_with_an_event_and_http_keeps_serving() {
    let (env, pebble) = env_with_pebble(None).await;
    let domain = env.domain();
    // nginx listens on 127.0.0.1 only: validation cannot connect.
    pebble.point_a(domain.as_str(), "127.0.0.2").await;
    let images = env.upload("web", vec![fixtures::web("v1")]).await;
    let mut tls_events = env
        .client
        .subscribe(env.worker.names.tls_events(&domain))
        .await
        .expect("subscribe to TLS events");

    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]);
    let (done, _) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 1);

    let event = next_tls_event(&mut tls_events, &pebble).await;
    let EventKind::CertificateFailed {
        code,
        message,
        hint,
        retry_in_secs,
    } = &event.kind
    else {
        panic!("expected certificate_failed, got {event:?}");
    };
    assert_eq!(*code, ErrorCode::TlsChallengeFailed, "{message}");
    assert!(message.contains(domain.as_str()), "{message}");
    assert!(
        hint.as_deref().is_some_and(|h| h.contains("DNS")),
        "{hint:?}"
    );
    assert!(*retry_in_secs >= 60, "{retry_in_secs}");

    // Plain HTTP serves the site as before; no TLS block was rendered.
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));
    let conf = std::fs::read_to_string(env.nginx.conf_dir().join(format!("{domain}.conf")))
        .expect("the domain's nginx file");
    assert!(!conf.contains("ssl_certificate"), "{conf}");
}

/// A certbot-like lineage in `dir` for `domain`, issued by a CA made here
/// (returned as PEM), valid from `days_ago` days ago for `days` days.
fn certbot_lineage(dir: &Path, domain: &Domain, days_ago: i64, days: i64) -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fake certbot CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(days_ago);
    params.not_after = params.not_before + time::Duration::days(days);
    let cert = params.signed_by(&key, &*ca).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("fullchain.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("privkey.pem"), key.serialize_pem()).unwrap();
    ca.pem()
}

#[tokio::test]
async fn a_certbot_certificate_is_served_until_due_then_replaced() {
    let live = tempfile::tempdir().expect("certbot's live directory");
    let (env, pebble) = env_with_pebble(Some(live.path().to_path_buf())).await;
    let images = env.upload("web", vec![fixtures::web("v1")]).await;
    let tls = ("127.0.0.1", env.nginx.tls_port());

    // Fresh (day 10 of 90): kept; HostKit obtains nothing.
    let fresh = env.domain();
    let fresh_ca = certbot_lineage(&live.path().join(fresh.as_str()), &fresh, 10, 90);
    let mut fresh_events = env
        .client
        .subscribe(env.worker.names.tls_events(&fresh))
        .await
        .expect("subscribe");
    let job = env.deploy_job(&fresh, &web("hostkit-test/web:v1"), vec![images.clone()]);
    assert_eq!(succeeded_version(&env.run(&job).await.0), 1);
    let response = https_request(tls, fresh.as_str(), "/", fresh_ca.as_bytes())
        .await
        .expect("HTTPS with certbot's certificate");
    assert_eq!((response.status, response.body.as_str()), (200, "web v1\n"));

    // Due (day 80 of 90), in a `-0001` lineage: replaced by HostKit's own.
    let due = env.domain();
    let due_ca = certbot_lineage(&live.path().join(format!("{due}-0001")), &due, 80, 90);
    let mut due_events = env
        .client
        .subscribe(env.worker.names.tls_events(&due))
        .await
        .expect("subscribe");
    let job = env.deploy_job(&due, &web("hostkit-test/web:v1"), vec![images]);
    assert_eq!(succeeded_version(&env.run(&job).await.0), 1);
    let issued = next_tls_event(&mut due_events, &pebble).await;
    assert!(
        matches!(
            &issued.kind,
            EventKind::CertificateIssued { renewal: false, .. }
        ),
        "{issued:?}"
    );
    let root = pebble.issuing_root_pem().await;
    let response = https_request(tls, due.as_str(), "/", &root)
        .await
        .expect("HTTPS with HostKit's certificate");
    assert_eq!(response.status, 200);
    assert!(
        https_request(tls, due.as_str(), "/", due_ca.as_bytes())
            .await
            .is_err(),
        "certbot's certificate is no longer served"
    );

    // The fresh domain was looked at (before the due one) and left alone.
    let nothing = tokio::time::timeout(Duration::from_secs(1), fresh_events.next()).await;
    assert!(nothing.is_err(), "unexpected TLS event: {nothing:?}");
    let response = https_request(tls, fresh.as_str(), "/", fresh_ca.as_bytes())
        .await
        .expect("still certbot's certificate");
    assert_eq!(response.status, 200);
}
