//! Events on skerryd's Machine: a malformed after_id is INVALID_ARGUMENT naming it, a
//! reader resumes after an id without missing or repeating an event, a watch keeps
//! streaming new events, and stopping the server ends open streams instead of
//! waiting on them forever.

mod common;

use common::Served;
use futures_util::StreamExt as _;
use skerry_api::{pb, Role};
use skerryd_core::NewEvent;
use tonic::Code;

fn request(after_id: &str, watch: bool) -> pb::EventsRequest {
    pb::EventsRequest {
        after_id: after_id.into(),
        watch,
    }
}

#[tokio::test]
async fn a_malformed_after_id_is_an_invalid_argument_naming_it() {
    let served = Served::start().await;
    let mut client = served.client(Role::Reader).await;
    for bad in ["42", "00000003-00000000000x", "3-1", &"9".repeat(5000)] {
        let status = client.events(request(bad, false)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        assert!(
            status.message().starts_with("after_id"),
            "{}",
            status.message()
        );
        let shown = &bad[..bad.len().min(20)];
        assert!(status.message().contains(shown), "{}", status.message());
        assert!(status.message().len() < 400, "{}", status.message());
    }
    served.stop().await;
}

#[tokio::test]
async fn events_resume_after_an_id_and_a_watch_keeps_streaming() {
    let served = Served::start().await;
    let mut client = served.client(Role::Reader).await;
    let [first, second] = served.first_events.clone();

    let all: Vec<pb::Event> = client
        .events(request("", false))
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(
        all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [first.as_str(), second.as_str()]
    );
    let service = &all[1];
    assert_eq!(service.kind, "service.state");
    assert_eq!(service.resource.as_ref().unwrap().id, "web");
    assert_eq!(service.attributes["state"], "running");
    assert!(service.time.is_some());

    let mut resumed = client
        .events(request(&first, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resumed.next().await.unwrap().unwrap().id, second);
    let third = served
        .events
        .push(NewEvent::new("config.applied", "generation 8"));
    let fourth = served
        .events
        .push(NewEvent::new("service.state", "web stopped"));
    assert_eq!(resumed.next().await.unwrap().unwrap().id, third);
    assert_eq!(resumed.next().await.unwrap().unwrap().id, fourth);

    // Resuming after the newest id gives nothing old, only what comes next.
    let mut latest = client
        .events(request(&fourth, true))
        .await
        .unwrap()
        .into_inner();
    let fifth = served.events.push(NewEvent::new("x", "fifth"));
    assert_eq!(latest.next().await.unwrap().unwrap().id, fifth);
    served.stop().await;
}

#[tokio::test]
async fn stopping_the_server_ends_open_streams_with_unavailable() {
    let served = Served::start().await;
    let mut client = served.client(Role::Reader).await;
    let mut events = client.events(request("", true)).await.unwrap().into_inner();
    let mut watch = client
        .resource_watch(pb::ResourceWatchRequest {
            namespace: "widgets".into(),
            r#type: "Widgets.test.skerry.dev".into(),
            id: String::new(),
            bootstrap: false,
        })
        .await
        .unwrap()
        .into_inner();
    for id in &served.first_events {
        assert_eq!(&events.next().await.unwrap().unwrap().id, id);
    }
    assert_eq!(
        watch.next().await.unwrap().unwrap().kind(),
        pb::ResourceEventKind::Bootstrapped
    );
    // The server stops although both streams are open (it would wait forever if the
    // streams did not end).
    served.stop().await;
    let ended = events.next().await.unwrap().unwrap_err();
    let watch_ended = watch.next().await.unwrap().unwrap_err();
    for (what, status) in [("events", ended), ("watch", watch_ended)] {
        assert_eq!(status.code(), Code::Unavailable, "{what}: {status:?}");
        assert!(status.message().contains("stopping"), "{what}: {status:?}");
    }
}
