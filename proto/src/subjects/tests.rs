//! Tests of subject and name construction.

use super::*;
use crate::event::EventKind;
use crate::fixtures;

#[test]
fn default_names() {
    let names = Names::default();
    let node = fixtures::node();
    let domain = fixtures::domain();
    let id = fixtures::job_id();
    assert_eq!(names.root(), "hostkit");
    assert_eq!(names.jobs_stream(), "HOSTKIT_JOBS");
    assert_eq!(
        names.jobs_subject(&node, &domain),
        "hostkit.jobs.vps-1.example_com"
    );
    assert_eq!(names.jobs_filter(&node), "hostkit.jobs.vps-1.>");
    assert_eq!(names.jobs_all(), "hostkit.jobs.>");
    assert_eq!(names.jobs_consumer(&node), "worker-vps-1");
    assert_eq!(names.events_stream(), "HOSTKIT_EVENTS");
    assert_eq!(
        names.events_stream_subjects(),
        ["hostkit.events.>", "hostkit.nodes.>"]
    );
    assert_eq!(
        names.job_events(&domain, &id),
        "hostkit.events.example_com.job.01HZY3W8Q9V1T3M9X0A7B5C2DE"
    );
    assert_eq!(
        names.job_events_all(&domain),
        "hostkit.events.example_com.job.*"
    );
    assert_eq!(
        names.job_events_any_domain(&id),
        "hostkit.events.*.job.01HZY3W8Q9V1T3M9X0A7B5C2DE"
    );
    assert_eq!(
        names.health_events(&domain, "api.v2"),
        "hostkit.events.example_com.health.api_v2"
    );
    assert_eq!(
        names.health_events_all(&domain),
        "hostkit.events.example_com.health.*"
    );
    assert_eq!(names.domain_events(&domain), "hostkit.events.example_com.>");
    assert_eq!(names.events_all(), "hostkit.events.>");
    assert_eq!(
        names.node_event(&node, NodeEvent::Heartbeat),
        "hostkit.nodes.vps-1.heartbeat"
    );
    assert_eq!(
        names.node_event(&node, NodeEvent::Online),
        "hostkit.nodes.vps-1.online"
    );
    assert_eq!(
        names.node_event(&node, NodeEvent::Offline),
        "hostkit.nodes.vps-1.offline"
    );
    assert_eq!(names.node_events(&node), "hostkit.nodes.vps-1.*");
    assert_eq!(names.nodes_all(), "hostkit.nodes.>");
    assert_eq!(
        names.ctl(&node, ControlVerb::Status),
        "hostkit.ctl.vps-1.status"
    );
    assert_eq!(names.ctl_filter(&node), "hostkit.ctl.vps-1.>");
    assert_eq!(names.images_bucket(), "hostkit_images");
    assert_eq!(names.placement_bucket(), "hostkit_placement");
    assert_eq!(names.placement_key(&domain, &node), "example_com.vps-1");
    assert_eq!(names.legacy_placement_key(&domain), "example_com");
    assert_eq!(
        names.placement_write_subject(&node),
        "$KV.hostkit_placement.*.vps-1"
    );
    assert_eq!(names.nodes_bucket(), "hostkit_nodes");
    assert_eq!(names.node_key(&node), "vps-1");
    let hex = "0".repeat(64);
    assert_eq!(
        names.image_object_name(&hex).unwrap().as_str(),
        format!("sha256-{hex}")
    );
    assert!(names.image_object_name("xyz").is_err());
}

#[test]
fn custom_root() {
    let names = Names::new("acme.hk").unwrap();
    assert_eq!(names.jobs_stream(), "ACME_HK_JOBS");
    assert_eq!(names.events_stream(), "ACME_HK_EVENTS");
    assert_eq!(names.images_bucket(), "acme_hk_images");
    assert_eq!(names.placement_bucket(), "acme_hk_placement");
    assert_eq!(names.nodes_bucket(), "acme_hk_nodes");
    assert_eq!(names.jobs_all(), "acme.hk.jobs.>");
    assert_eq!(Names::new("hostkit").unwrap(), Names::default());
}

#[test]
fn rejects_bad_roots() {
    assert!(matches!(Names::new(""), Err(NameError::Empty { .. })));
    assert!(matches!(
        Names::new("a..b"),
        Err(NameError::EmptyLabel { .. })
    ));
    assert!(matches!(
        Names::new(".a"),
        Err(NameError::EmptyLabel { .. })
    ));
    assert!(matches!(Names::new("a.*"), Err(NameError::Wildcard { .. })));
    assert!(matches!(
        Names::new("a.>"),
        Err(NameError::BadChar { ch: '>', .. })
    ));
    assert!(matches!(
        Names::new("Hostkit"),
        Err(NameError::BadChar { ch: 'H', .. })
    ));
    assert!(matches!(
        Names::new("a b"),
        Err(NameError::Whitespace { .. })
    ));
    assert!(matches!(
        Names::new("a/b"),
        Err(NameError::PathSeparator { .. })
    ));
    assert!(matches!(
        Names::new(&"a".repeat(65)),
        Err(NameError::TooLong { .. })
    ));
}

#[test]
fn subjects_parse_back() {
    let names = Names::default();
    let node = fixtures::node();
    let domain = fixtures::domain();
    let subject = names.jobs_subject(&node, &domain);
    assert_eq!(
        names.parse_jobs_subject(&subject),
        Some((node.clone(), domain))
    );
    assert_eq!(names.parse_jobs_subject("hostkit.jobs.vps-1.a__b"), None);
    assert_eq!(
        names.parse_jobs_subject("other.jobs.vps-1.example_com"),
        None
    );
    assert_eq!(
        names.parse_jobs_subject("hostkitx.jobs.vps-1.example_com"),
        None
    );
    for &verb in ControlVerb::ALL {
        let subject = names.ctl(&node, verb);
        assert_eq!(
            names.parse_ctl_subject(&subject),
            Some((node.clone(), verb, None))
        );
        let domain: Domain = "example.com".parse().unwrap();
        let scoped = names.ctl_for(&node, verb, Some(&domain));
        assert_eq!(scoped, format!("hostkit.ctl.vps-1.{verb}.example_com"));
        assert_eq!(
            names.parse_ctl_subject(&scoped),
            Some((node.clone(), verb, Some("example_com".into())))
        );
        assert_eq!(verb.as_str().parse::<ControlVerb>().unwrap(), verb);
    }
    assert_eq!(names.parse_ctl_subject("hostkit.ctl.vps-1.reboot"), None);
    assert_eq!(names.parse_ctl_subject("hostkit.ctl.vps-1.logs.a.b"), None);
    assert!("reboot".parse::<ControlVerb>().is_err());
}

#[test]
fn every_event_has_its_subject() {
    let names = Names::default();
    for (name, event) in fixtures::events() {
        let subject = names
            .event_subject(&event)
            .unwrap_or_else(|| panic!("{name}"));
        let expected_prefix = match event.kind.category() {
            EventCategory::Job => "hostkit.events.example_com.job.01HZY3W8Q9V1T3M9X0A7B5C2DE",
            EventCategory::Health => "hostkit.events.example_com.health.",
            EventCategory::Tls => "hostkit.events.example_com.tls",
            EventCategory::Node => "hostkit.nodes.vps-1.",
            EventCategory::Unknown => unreachable!(),
        };
        assert!(subject.starts_with(expected_prefix), "{name}: {subject}");
        if event.kind.category() == EventCategory::Node {
            assert_eq!(subject, format!("hostkit.nodes.vps-1.{name}"));
        }
    }
    let orphan = Event::new(fixtures::node(), 1, EventKind::Queued { position: 0 });
    assert_eq!(names.event_subject(&orphan), None);
}
