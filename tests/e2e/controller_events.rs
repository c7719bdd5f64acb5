//! The operator's Event publisher against the Kubernetes API: repeats fold into one Event's series,
//! distinct notes stay distinct Events, and an Event deleted meanwhile is created afresh.

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource};
use trusthub_operator::controller::events::{EventNote, EventPublisher};

fn note(text: &str) -> EventNote<'_> {
    EventNote {
        type_: EventType::Warning,
        reason: "NumberOnAnotherTrustProduct",
        action: "Reconcile",
        note: text,
    }
}

async fn events_about(api: &Api<Event>, name: &str) -> Vec<Event> {
    let mut found: Vec<Event> = api
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    found.sort_by_key(|e| e.metadata.name.clone());
    found
}

#[tokio::test]
async fn repeats_fold_into_a_series_and_distinct_notes_do_not() {
    let (cluster, client, ns) = crate::cluster::Cluster::start().await;
    let maps: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut cm = Secret::default();
    cm.metadata.name = Some("subject".into());
    let cm = maps
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let mut regarding: ObjectReference = cm.object_ref(&());
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let publisher = EventPublisher::new(client.clone(), "trusthub-operator".into(), None);

    publisher
        .publish(&regarding, &note("+15005550201 is taken"))
        .await
        .expect("publish");
    // A status write changes the object's resourceVersion; the repeat still folds.
    regarding.resource_version = Some("999999".into());
    publisher
        .publish(&regarding, &note("+15005550201 is taken"))
        .await
        .expect("publish again");
    publisher
        .publish(&regarding, &note("+15005550201 is taken"))
        .await
        .expect("publish a third time");
    let found = events_about(&events, "subject").await;
    assert_eq!(found.len(), 1, "three repeats are one Event: {found:?}");
    let first = &found[0];
    assert_eq!(first.series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(first.type_.as_deref(), Some("Warning"));
    assert_eq!(first.reason.as_deref(), Some("NumberOnAnotherTrustProduct"));
    assert_eq!(first.action.as_deref(), Some("Reconcile"));
    assert_eq!(first.note.as_deref(), Some("+15005550201 is taken"));
    assert_eq!(
        first.reporting_controller.as_deref(),
        Some("trusthub-operator")
    );
    assert_eq!(
        first.reporting_instance.as_deref(),
        Some("trusthub-operator")
    );
    assert_eq!(
        first.regarding.as_ref().and_then(|r| r.uid.clone()),
        cm.metadata.uid
    );

    publisher
        .publish(&regarding, &note("+15005550202 is taken"))
        .await
        .expect("publish another note");
    let found = events_about(&events, "subject").await;
    assert_eq!(found.len(), 2, "a different note is its own Event");

    // The folded Event is deleted (TTL in a real cluster): the next repeat creates a new one.
    let folded = first.metadata.name.clone().expect("event name");
    events
        .delete(&folded, &DeleteParams::default())
        .await
        .expect("delete event");
    publisher
        .publish(&regarding, &note("+15005550201 is taken"))
        .await
        .expect("publish after deletion");
    let found = events_about(&events, "subject").await;
    assert_eq!(found.len(), 2);
    let recreated = found
        .iter()
        .find(|e| e.note.as_deref() == Some("+15005550201 is taken"))
        .expect("recreated");
    assert_ne!(recreated.metadata.name.as_ref(), Some(&folded));
    assert_eq!(recreated.series, None);
    cluster.shutdown().await;
}
