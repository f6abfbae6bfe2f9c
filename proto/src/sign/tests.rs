//! Tests of job signing and verification.

use super::*;
use crate::fixtures;
use crate::job::{JobSpec, ScalePayload};

fn signed() -> (Job, KeyPair) {
    let key = KeyPair::new_user();
    let (_, mut job) = fixtures::jobs().into_iter().next().unwrap();
    sign_job(&mut job, &key).unwrap();
    (job, key)
}

#[test]
fn round_trip() {
    let (job, key) = signed();
    let signature = job.signature.clone().unwrap();
    assert_eq!(signature.key, key.public_key());
    assert!(signature.key.starts_with('U'));
    let raw = job.to_vec();
    let verified = verify_job_bytes(&raw, &[TrustedKey::any_domain(key.public_key())]).unwrap();
    assert_eq!(verified, job);
}

#[test]
fn signature_does_not_depend_on_key_order_or_whitespace() {
    let (job, key) = signed();
    let value: Value = serde_json::from_slice(&job.to_vec()).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    assert!(verify_job_bytes(&pretty, &[TrustedKey::any_domain(key.public_key())]).is_ok());
    // Reverse key order by hand.
    let Value::Object(map) = value else {
        unreachable!()
    };
    let mut reversed = String::from("{");
    for (i, (k, v)) in map.iter().rev().enumerate() {
        if i > 0 {
            reversed.push(',');
        }
        reversed.push_str(&format!("{}:{}", serde_json::to_string(k).unwrap(), v));
    }
    reversed.push('}');
    assert!(
        verify_job_bytes(
            reversed.as_bytes(),
            &[TrustedKey::any_domain(key.public_key())]
        )
        .is_ok()
    );
}

#[test]
fn unknown_fields_are_covered() {
    let (job, key) = signed();
    let mut value: Value = serde_json::from_slice(&job.to_vec()).unwrap();
    // A field a newer CLI added and signed.
    value.as_object_mut().unwrap().remove("signature");
    value["payload"]["future"] = Value::from("x");
    let mut signed_future = value.clone();
    let bytes = canonical_job_bytes(&serde_json::to_vec(&value).unwrap()).unwrap();
    let sig = STANDARD.encode(key.sign(&bytes).unwrap());
    signed_future["signature"] = serde_json::json!({"key": key.public_key(), "sig": sig});
    let raw = serde_json::to_vec(&signed_future).unwrap();
    assert!(verify_job_bytes(&raw, &[TrustedKey::any_domain(key.public_key())]).is_ok());
    // Tampering with that unknown field breaks the signature.
    signed_future["payload"]["future"] = Value::from("y");
    let raw = serde_json::to_vec(&signed_future).unwrap();
    assert!(matches!(
        verify_job_bytes(&raw, &[TrustedKey::any_domain(key.public_key())]),
        Err(SignError::BadSignature { .. })
    ));
}

#[test]
fn missing_signature() {
    let (_, job) = fixtures::jobs().into_iter().next().unwrap();
    let err = verify_job_bytes(
        &job.to_vec(),
        &[TrustedKey::any_domain(KeyPair::new_user().public_key())],
    )
    .unwrap_err();
    assert_eq!(err, SignError::MissingSignature);
    assert_eq!(err.code(), ErrorCode::JobUnauthorized);
    let mut value: Value = serde_json::from_slice(&job.to_vec()).unwrap();
    value["signature"] = Value::Null;
    assert_eq!(
        verify_job_bytes(&serde_json::to_vec(&value).unwrap(), &[]),
        Err(SignError::MissingSignature)
    );
}

#[test]
fn untrusted_key() {
    let (job, key) = signed();
    let other = KeyPair::new_user().public_key();
    let err = verify_job_bytes(&job.to_vec(), &[TrustedKey::any_domain(other)]).unwrap_err();
    assert_eq!(
        err,
        SignError::UntrustedKey {
            key: key.public_key()
        }
    );
    assert_eq!(err.code(), ErrorCode::JobUnauthorized);
    assert!(matches!(
        verify_job_bytes(&job.to_vec(), &[]),
        Err(SignError::UntrustedKey { .. })
    ));
}

#[test]
fn bad_signature() {
    let (mut job, key) = signed();
    job.spec = JobSpec::Scale(ScalePayload {
        service: "web".into(),
        replicas: 99,
    });
    let err =
        verify_job_bytes(&job.to_vec(), &[TrustedKey::any_domain(key.public_key())]).unwrap_err();
    assert_eq!(
        err,
        SignError::BadSignature {
            key: key.public_key()
        }
    );
    assert_eq!(err.code(), ErrorCode::JobUnauthorized);

    // A valid signature by a trusted key over other bytes.
    let (other_job, _) = signed();
    let (mut job, key) = signed();
    let mut forged = other_job.signature.unwrap();
    forged.key = key.public_key();
    job.signature = Some(forged);
    assert!(matches!(
        verify_job_bytes(&job.to_vec(), &[TrustedKey::any_domain(key.public_key())]),
        Err(SignError::BadSignature { .. })
    ));
}

#[test]
fn malformed() {
    let trusted = [TrustedKey::any_domain(KeyPair::new_user().public_key())];
    assert!(matches!(
        verify_job_bytes(b"nope", &trusted),
        Err(SignError::Malformed { .. })
    ));
    assert!(matches!(
        verify_job_bytes(b"[1]", &trusted),
        Err(SignError::Malformed { .. })
    ));
    assert!(matches!(
        verify_job_bytes(br#"{"signature":"abc"}"#, &trusted),
        Err(SignError::Malformed { .. })
    ));
    let json = format!(
        r#"{{"signature":{{"key":"{}","sig":"%%%"}}}}"#,
        trusted[0].key
    );
    let err = verify_job_bytes(json.as_bytes(), &trusted).unwrap_err();
    assert!(matches!(err, SignError::Malformed { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::JobInvalid);
    let bogus = [TrustedKey::any_domain("Unotakey")];
    let json = r#"{"signature":{"key":"Unotakey","sig":"AAAA"}}"#;
    assert!(matches!(
        verify_job_bytes(json.as_bytes(), &bogus),
        Err(SignError::Malformed { .. })
    ));

    // Correctly signed bytes that are not a job.
    let key = KeyPair::new_user();
    let body = br#"{"hello":"world"}"#;
    let sig = STANDARD.encode(key.sign(&canonical_job_bytes(body).unwrap()).unwrap());
    let raw = format!(
        r#"{{"hello":"world","signature":{{"key":"{}","sig":"{sig}"}}}}"#,
        key.public_key()
    );
    assert!(matches!(
        verify_job_bytes(raw.as_bytes(), &[TrustedKey::any_domain(key.public_key())]),
        Err(SignError::Malformed { .. })
    ));
}

#[test]
fn signing_needs_a_seed() {
    let public = KeyPair::from_public_key(&KeyPair::new_user().public_key()).unwrap();
    let (_, mut job) = fixtures::jobs().into_iter().next().unwrap();
    let err = sign_job(&mut job, &public).unwrap_err();
    assert!(matches!(err, SignError::Signing { .. }));
    assert!(job.signature.is_none());
}

#[test]
fn resigning_replaces_the_signature() {
    let (mut job, _) = signed();
    let key = KeyPair::new_user();
    sign_job(&mut job, &key).unwrap();
    assert!(verify_job_bytes(&job.to_vec(), &[TrustedKey::any_domain(key.public_key())]).is_ok());
}

fn claims_job(domain: &str, node: &str, ttl_minutes: i64) -> (Job, KeyPair) {
    let key = KeyPair::new_user();
    let mut job = fixtures::job(JobSpec::Scale(ScalePayload {
        service: "web".into(),
        replicas: 2,
    }));
    job.domain = domain.parse().unwrap();
    job.created_at = chrono::Utc::now();
    job.node = Some(node.parse().unwrap());
    job.expires_at = Some(job.created_at + chrono::Duration::minutes(ttl_minutes));
    sign_job(&mut job, &key).unwrap();
    (job, key)
}

fn bound(key: &KeyPair, patterns: &[&str]) -> Vec<TrustedKey> {
    vec![TrustedKey {
        key: key.public_key(),
        domains: patterns.iter().map(|p| p.parse().unwrap()).collect(),
    }]
}

#[test]
fn domain_patterns() {
    let d = |s: &str| -> crate::Domain { s.parse().unwrap() };
    let exact: DomainPattern = "example.com".parse().unwrap();
    let sub: DomainPattern = "*.example.com".parse().unwrap();
    assert!(exact.matches(&d("example.com")));
    assert!(!exact.matches(&d("www.example.com")));
    assert!(sub.matches(&d("www.example.com")));
    assert!(sub.matches(&d("a.b.example.com")));
    assert!(!sub.matches(&d("example.com")));
    assert!(
        !sub.matches(&d("badexample.com")),
        "a suffix is not a subdomain"
    );
    assert!("*".parse::<DomainPattern>().unwrap().matches(&d("x.test")));
    assert!("*.".parse::<DomainPattern>().is_err());
    assert!("exa mple.com".parse::<DomainPattern>().is_err());
}

#[test]
fn claims_bind_domain_node_and_time() {
    let now = chrono::Utc::now();
    let node: crate::NodeId = "vps-1".parse().unwrap();
    let (job, key) = claims_job("shop.example.com", "vps-1", 15);
    check_claims(&job, &bound(&key, &["*.example.com"]), &node, now).expect("in scope");

    let err = check_claims(&job, &bound(&key, &["other.test"]), &node, now).unwrap_err();
    assert!(matches!(err, SignError::OutOfScope { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::JobUnauthorized);

    let other: crate::NodeId = "vps-2".parse().unwrap();
    let err = check_claims(&job, &bound(&key, &["*"]), &other, now).unwrap_err();
    assert!(err.to_string().contains("signed for node vps-1"), "{err}");

    let later = now + chrono::Duration::minutes(30);
    let err = check_claims(&job, &bound(&key, &["*"]), &node, later).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");

    let (forever, key) = claims_job("a.test", "vps-1", 60 * 48);
    let err = check_claims(&forever, &bound(&key, &["*"]), &node, now).unwrap_err();
    assert!(err.to_string().contains("longer than 24 hours"), "{err}");

    let (mut unbound, key) = claims_job("a.test", "vps-1", 15);
    unbound.node = None;
    let err = check_claims(&unbound, &bound(&key, &["*"]), &node, now).unwrap_err();
    assert!(err.to_string().contains("names no node"), "{err}");
}
