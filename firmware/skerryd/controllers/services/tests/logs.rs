//! Logs: the buffered lines (tail), then with follow the new ones as they come, each
//! marked stdout or stderr; a ring that dropped lines says so.

mod common;

use common::*;
use serde_json::json;
use skerry_api::pb;
use tokio_stream::StreamExt;
use tonic::Code;

fn text(entry: &pb::LogEntry) -> String {
    String::from_utf8_lossy(&entry.line).into_owned()
}

fn request(id: &str, follow: bool, tail_lines: u32) -> pb::LogsRequest {
    pb::LogsRequest {
        service_id: id.into(),
        follow,
        tail_lines,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_then_follow() {
    need("sh");
    let h = Harness::new();
    let go = h.path("go");
    let script = format!(
        "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three; \
         while [ ! -e {} ]; do sleep 0.02; done; echo four >&2; exec sleep 300",
        go.display()
    );
    h.set_services(&[service(
        json!({"name": "talker", "command": ["sh", "-c", script]}),
    )]);
    h.running_pid("talker").await;
    let all = collect_until(&h, request("talker", false, 0), |e| e.len() == 3).await;
    let lines: Vec<(String, i32)> = all.iter().map(|e| (text(e), e.stream)).collect();
    let (out, err) = (pb::LogStream::Stdout as i32, pb::LogStream::Stderr as i32);
    assert_eq!(
        lines,
        [
            ("one".into(), out),
            ("two".into(), err),
            ("three".into(), out)
        ]
    );
    assert!(all
        .iter()
        .all(|e| e.dropped_before == 0 && e.time.is_some()));

    let tail = collect(&h, request("talker", false, 2)).await;
    assert_eq!(tail.iter().map(text).collect::<Vec<_>>(), ["two", "three"]);

    let mut follow = h.ops.logs(request("talker", true, 1)).await.unwrap();
    let first = within("the buffered line", follow.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&first), "three");
    std::fs::write(&go, b"").unwrap();
    let next = within("the new line", follow.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((text(&next), next.stream), ("four".into(), err));
    drop(follow);

    let err = h
        .ops
        .logs(request(
            "talker",
            false,
            skerryd_services::MAX_TAIL_LINES + 1,
        ))
        .await
        .err()
        .expect("too long a tail is refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("tail_lines"), "{}", err.message());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_that_dropped_lines_says_how_many() {
    need("seq");
    let h = Harness::new();
    // 40000 numbered lines: well past a 256 KiB ring at 48 bytes of overhead a line.
    h.set_services(&[service(json!({
        "name": "flood",
        "command": ["sh", "-c", "seq 1 40000; exec sleep 300"],
    }))]);
    h.running_pid("flood").await;
    let entries = collect_until(&h, request("flood", false, 0), |e| {
        e.last().is_some_and(|e| text(e) == "40000")
    })
    .await;
    let first = &entries[0];
    assert!(first.dropped_before > 0, "the ring dropped lines");
    let first_number: u64 = text(first).parse().unwrap();
    assert_eq!(
        first.dropped_before,
        first_number - 1,
        "every line before the first one held was dropped"
    );
    assert!(entries[1..].iter().all(|e| e.dropped_before == 0));
    assert_eq!(entries.len() as u64, 40_000 - first.dropped_before);

    // A tail asks for the end on purpose: nothing is reported dropped.
    let tail = collect(&h, request("flood", false, 3)).await;
    assert_eq!(
        tail.iter().map(text).collect::<Vec<_>>(),
        ["39998", "39999", "40000"]
    );
    assert!(tail.iter().all(|e| e.dropped_before == 0));
    h.stop().await;
}

/// A non-following Logs answer, collected.
async fn collect(h: &Harness, request: pb::LogsRequest) -> Vec<pb::LogEntry> {
    let stream = h.ops.logs(request).await.unwrap();
    within(
        "the buffered lines",
        stream.map(|e| e.unwrap()).collect::<Vec<_>>(),
    )
    .await
}

/// Collects a non-following answer until `done` says it is complete.
async fn collect_until(
    h: &Harness,
    request: pb::LogsRequest,
    done: impl Fn(&[pb::LogEntry]) -> bool,
) -> Vec<pb::LogEntry> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let entries = collect(h, request.clone()).await;
        if done(&entries) {
            return entries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for the lines"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
