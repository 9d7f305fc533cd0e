//! Events: the kept events after `after_id`, then (with `watch`) every new one. A
//! reader too slow for the log's broadcast buffer is ended with ABORTED naming the id
//! to resume from, so it can come back without missing or repeating an event.

use std::collections::VecDeque;

use futures_util::stream;
use skerry_api::pb;
use skerryd_core::{Answers, Event, EventLog};
use tokio::sync::broadcast;
use tonic::Status;

use super::limits::quoted;

/// The Events answer for `request`.
pub fn events(log: &EventLog, request: &pb::EventsRequest) -> Result<Answers<pb::Event>, Status> {
    let after = match request.after_id.as_str() {
        "" => None,
        id if EventLog::is_valid_id(id) => Some(id.to_owned()),
        id => {
            return Err(Status::invalid_argument(format!(
                "after_id {} is not an event id: ids look like 00000003-000000000042 (the start number, a dash, the sequence), as Events hands them out; leave it empty to start from the oldest kept event",
                quoted(id)
            )))
        }
    };
    let (backlog, live) = log
        .since(after.as_deref())
        .map_err(|gap| Status::out_of_range(gap.to_string()))?;
    let reader = Reader {
        backlog: backlog.into(),
        live: request.watch.then_some(live),
        last: after,
    };
    Ok(Box::pin(stream::unfold(reader, Reader::next)))
}

struct Reader {
    backlog: VecDeque<Event>,
    live: Option<broadcast::Receiver<Event>>,
    /// The id of the last event sent (or the one the reader started after).
    last: Option<String>,
}

impl Reader {
    async fn next(mut self) -> Option<(Result<pb::Event, Status>, Reader)> {
        let event = match self.backlog.pop_front() {
            Some(event) => event,
            None => match self.live.as_mut()?.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.live = None;
                    let resume = match &self.last {
                        Some(id) => format!("resume with after_id {id}"),
                        None => "resume with an empty after_id".to_owned(),
                    };
                    let status = Status::aborted(format!(
                        "this reader fell {missed} events behind the event log and was stopped; {resume} to get every event after the last one it received"
                    ));
                    return Some((Err(status), self));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
        };
        self.last = Some(event.id.clone());
        Some((Ok(to_wire(event)), self))
    }
}

fn to_wire(event: Event) -> pb::Event {
    pb::Event {
        id: event.id,
        time: Some(event.time.into()),
        kind: event.kind,
        resource: event
            .resource
            .map(|(namespace, r#type, id)| pb::ResourceRef {
                namespace,
                r#type,
                id,
            }),
        message: event.message,
        attributes: event.attributes.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;
    use skerryd_core::NewEvent;
    use tonic::Code;

    use super::*;

    fn request(after_id: &str, watch: bool) -> pb::EventsRequest {
        pb::EventsRequest {
            after_id: after_id.into(),
            watch,
        }
    }

    #[tokio::test]
    async fn a_lagging_reader_is_told_the_id_to_resume_from() {
        let log = EventLog::new(1);
        let first = log.push(NewEvent::new("x", "first"));
        let mut stream = events(&log, &request("", true)).unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap().id, first);
        // More than the broadcast buffer holds, while the reader is not reading.
        for i in 0..1100 {
            log.push(NewEvent::new("x", i.to_string()));
        }
        let status = stream.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Aborted);
        assert!(
            status.message().contains(&format!("after_id {first}")),
            "{}",
            status.message()
        );
        assert!(
            stream.next().await.is_none(),
            "the stream ends after the status"
        );
        // Resuming from that id gives the next event.
        let mut resumed = events(&log, &request(&first, false)).unwrap();
        assert_eq!(resumed.next().await.unwrap().unwrap().message, "0");
    }

    #[tokio::test]
    async fn without_watch_the_stream_ends_after_the_kept_events() {
        let log = EventLog::new(2);
        log.push(
            NewEvent::new("x", "a")
                .about("ns", "T", "id")
                .with("k", "v"),
        );
        let all: Vec<_> = events(&log, &request("", false)).unwrap().collect().await;
        assert_eq!(all.len(), 1);
        let event = all[0].as_ref().unwrap();
        assert_eq!(event.kind, "x");
        assert_eq!(event.resource.as_ref().unwrap().r#type, "T");
        assert_eq!(event.attributes["k"], "v");
    }
}
