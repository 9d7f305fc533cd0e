//! ResourceGet/List/Watch and Dependencies on skerryd's Machine: sensitive types are
//! admin-only on every read path, an unknown type or resource is NOT_FOUND naming it,
//! a request missing a field is INVALID_ARGUMENT naming the field, specs come back as
//! YAML, and a watch sees changes as they are written.

mod common;

use common::{Served, Widget};
use futures_util::StreamExt as _;
use skerry_api::{pb, Role};
use skerry_runtime::ResourceSpec;
use skerryd_core::resources::{ActiveService, HealthCheckStatus};
use tonic::Code;

fn reference<T: ResourceSpec>(id: &str) -> Option<pb::ResourceRef> {
    Some(pb::ResourceRef {
        namespace: T::NAMESPACE.into(),
        r#type: T::TYPE.into(),
        id: id.into(),
    })
}

fn watch_request<T: ResourceSpec>(id: &str, bootstrap: bool) -> pb::ResourceWatchRequest {
    pb::ResourceWatchRequest {
        namespace: T::NAMESPACE.into(),
        r#type: T::TYPE.into(),
        id: id.into(),
        bootstrap,
    }
}

#[tokio::test]
async fn a_sensitive_type_is_refused_below_admin_on_every_read_path_and_shown_to_admin() {
    let served = Served::start().await;
    for role in [Role::Reader, Role::Operator] {
        let mut client = served.client(role).await;
        let get = client
            .resource_get(pb::ResourceGetRequest {
                r#ref: reference::<ActiveService>("web"),
            })
            .await
            .unwrap_err();
        let list = client
            .resource_list(pb::ResourceListRequest {
                namespace: ActiveService::NAMESPACE.into(),
                r#type: ActiveService::TYPE.into(),
            })
            .await
            .unwrap_err();
        let watch = client
            .resource_watch(watch_request::<ActiveService>("", true))
            .await
            .expect_err("a watch of a sensitive type must be refused at once");
        for (what, status) in [("get", get), ("list", list), ("watch", watch)] {
            assert_eq!(status.code(), Code::PermissionDenied, "{what} as {role}");
            let message = status.message();
            assert!(message.contains(ActiveService::TYPE), "{what}: {message}");
            assert!(message.contains("os:admin"), "{what}: {message}");
            assert!(message.contains(role.organization()), "{what}: {message}");
            assert!(!message.contains("s3cret"), "{what}: {message}");
        }
    }
    let mut admin = served.client(Role::Admin).await;
    let resource = admin
        .resource_get(pb::ResourceGetRequest {
            r#ref: reference::<ActiveService>("web"),
        })
        .await
        .unwrap()
        .into_inner()
        .resource
        .unwrap();
    assert!(
        resource.spec_yaml.contains("API_TOKEN: s3cret-t0ken"),
        "{}",
        resource.spec_yaml
    );
    let listed = admin
        .resource_list(pb::ResourceListRequest {
            namespace: ActiveService::NAMESPACE.into(),
            r#type: ActiveService::TYPE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.resources.len(), 1);
    let mut watch = admin
        .resource_watch(watch_request::<ActiveService>("", true))
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.kind(), pb::ResourceEventKind::Created);
    assert!(first.resource.unwrap().spec_yaml.contains("s3cret-t0ken"));
    served.stop().await;
}

#[tokio::test]
async fn a_resource_carries_its_metadata_and_its_spec_as_yaml() {
    let served = Served::start().await;
    let mut client = served.client(Role::Reader).await;
    let check = client
        .resource_get(pb::ResourceGetRequest {
            r#ref: reference::<HealthCheckStatus>("web/http"),
        })
        .await
        .unwrap()
        .into_inner()
        .resource
        .unwrap();
    let r = check.r#ref.as_ref().unwrap();
    assert_eq!(
        (r.namespace.as_str(), r.r#type.as_str(), r.id.as_str()),
        ("health", HealthCheckStatus::TYPE, "web/http")
    );
    assert_eq!(check.version, 1);
    assert_eq!(check.phase(), pb::ResourcePhase::Running);
    assert!(check.created.is_some() && check.updated.is_some());
    // A string that would not read back as itself unquoted is quoted.
    assert!(
        check.spec_yaml.contains("message: \"it's: fine\"\n"),
        "{}",
        check.spec_yaml
    );
    assert!(
        check.spec_yaml.contains("critical: true\n"),
        "{}",
        check.spec_yaml
    );
    let widget = client
        .resource_get(pb::ResourceGetRequest {
            r#ref: reference::<Widget>("w1"),
        })
        .await
        .unwrap()
        .into_inner()
        .resource
        .unwrap();
    assert_eq!(widget.owner, "widget-maker");
    assert_eq!(widget.spec_yaml, "label: first\nsize: 3\n");
    served.stop().await;
}

#[tokio::test]
async fn unknown_types_and_resources_are_not_found_naming_them() {
    let served = Served::start().await;
    let mut client = served.client(Role::Admin).await;
    let unknown = client
        .resource_list(pb::ResourceListRequest {
            namespace: "widgets".into(),
            r#type: "Gadgets.test.skerry.dev".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(
        unknown.message().contains("Gadgets.test.skerry.dev"),
        "{}",
        unknown.message()
    );
    let watch_unknown = client
        .resource_watch(pb::ResourceWatchRequest {
            namespace: "widgets".into(),
            r#type: "Gadgets.test.skerry.dev".into(),
            id: String::new(),
            bootstrap: true,
        })
        .await
        .expect_err("watching an unknown type must be refused");
    assert_eq!(watch_unknown.code(), Code::NotFound);
    // The refused watch left no trace of the unknown type in the state.
    assert!(
        served
            .state
            .kinds()
            .iter()
            .all(|(_, t, _)| t != "Gadgets.test.skerry.dev"),
        "{:?}",
        served.state.kinds()
    );

    let wrong_namespace = client
        .resource_get(pb::ResourceGetRequest {
            r#ref: Some(pb::ResourceRef {
                namespace: "config".into(),
                r#type: Widget::TYPE.into(),
                id: "w1".into(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong_namespace.code(), Code::NotFound);
    assert!(
        wrong_namespace.message().contains("it is in widgets"),
        "{}",
        wrong_namespace.message()
    );

    let missing = client
        .resource_get(pb::ResourceGetRequest {
            r#ref: reference::<Widget>("w9"),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing
            .message()
            .contains("widgets/Widgets.test.skerry.dev/w9"),
        "{}",
        missing.message()
    );
    served.stop().await;
}

#[tokio::test]
async fn missing_or_oversized_fields_are_invalid_arguments_naming_the_field() {
    let served = Served::start().await;
    let mut client = served.client(Role::Admin).await;
    let no_ref = client
        .resource_get(pb::ResourceGetRequest { r#ref: None })
        .await
        .unwrap_err();
    assert_eq!(no_ref.code(), Code::InvalidArgument);
    assert!(
        no_ref.message().starts_with("ref is missing"),
        "{}",
        no_ref.message()
    );

    let cases = [
        (
            "ref.namespace",
            pb::ResourceRef {
                namespace: String::new(),
                r#type: Widget::TYPE.into(),
                id: "w1".into(),
            },
        ),
        (
            "ref.type",
            pb::ResourceRef {
                namespace: "widgets".into(),
                r#type: String::new(),
                id: "w1".into(),
            },
        ),
        (
            "ref.id",
            pb::ResourceRef {
                namespace: "widgets".into(),
                r#type: Widget::TYPE.into(),
                id: String::new(),
            },
        ),
        (
            "ref.type",
            pb::ResourceRef {
                namespace: "widgets".into(),
                r#type: "T".repeat(skerryd::api::MAX_TYPE_BYTES + 1),
                id: "w1".into(),
            },
        ),
        (
            "ref.id",
            pb::ResourceRef {
                namespace: "widgets".into(),
                r#type: Widget::TYPE.into(),
                id: "i".repeat(skerryd::api::MAX_RESOURCE_ID_BYTES + 1),
            },
        ),
    ];
    for (field, r) in cases {
        let status = client
            .resource_get(pb::ResourceGetRequest { r#ref: Some(r) })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    let list = client
        .resource_list(pb::ResourceListRequest {
            namespace: "widgets".into(),
            r#type: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(list.code(), Code::InvalidArgument);
    assert!(
        list.message().starts_with("type is empty"),
        "{}",
        list.message()
    );
    let watch = client
        .resource_watch(pb::ResourceWatchRequest {
            namespace: String::new(),
            r#type: Widget::TYPE.into(),
            id: String::new(),
            bootstrap: false,
        })
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::InvalidArgument);
    assert!(
        watch.message().starts_with("namespace is empty"),
        "{}",
        watch.message()
    );
    served.stop().await;
}

async fn next_event(
    watch: &mut tonic::Streaming<pb::ResourceWatchEvent>,
) -> (pb::ResourceEventKind, String, String) {
    label(&watch.next().await.unwrap().unwrap())
}

fn label(event: &pb::ResourceWatchEvent) -> (pb::ResourceEventKind, String, String) {
    let resource = event.resource.clone().unwrap_or_default();
    (
        event.kind(),
        resource.r#ref.map(|r| r.id).unwrap_or_default(),
        resource.spec_yaml,
    )
}

#[tokio::test]
async fn a_watch_bootstraps_then_sees_updates_creations_and_removals() {
    let served = Served::start().await;
    let mut client = served.client(Role::Reader).await;
    let mut watch = client
        .resource_watch(watch_request::<Widget>("", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next_event(&mut watch).await,
        (
            pb::ResourceEventKind::Created,
            "w1".into(),
            "label: first\nsize: 3\n".into()
        )
    );
    assert_eq!(
        next_event(&mut watch).await.0,
        pb::ResourceEventKind::Bootstrapped
    );
    let widget = |size, label: &str| Widget {
        size,
        label: label.into(),
    };
    served
        .state
        .apply_owned("w1", Some("widget-maker"), widget(4, "bigger"))
        .unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        (
            pb::ResourceEventKind::Updated,
            "w1".into(),
            "label: bigger\nsize: 4\n".into()
        )
    );
    served
        .state
        .apply_owned("w2", Some("widget-maker"), widget(1, "second"))
        .unwrap();
    assert_eq!(
        next_event(&mut watch).await.0,
        pb::ResourceEventKind::Created
    );
    served
        .state
        .destroy::<Widget>("w2", Some("widget-maker"))
        .unwrap();
    assert_eq!(
        next_event(&mut watch).await.0,
        pb::ResourceEventKind::Destroyed
    );
    served.stop().await;
}

#[tokio::test]
async fn a_watch_without_bootstrap_starts_at_the_marker_and_one_resource_can_be_watched() {
    let served = Served::start().await;
    let mut client = served.client(Role::Reader).await;
    let mut all = client
        .resource_watch(watch_request::<Widget>("", false))
        .await
        .unwrap()
        .into_inner();
    let first = all.next().await.unwrap().unwrap();
    assert_eq!(first.kind(), pb::ResourceEventKind::Bootstrapped);
    assert!(first.resource.is_none());

    let mut one = client
        .resource_watch(watch_request::<Widget>("w2", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        one.next().await.unwrap().unwrap().kind(),
        pb::ResourceEventKind::Bootstrapped
    );
    for (id, size) in [("w1", 5), ("w2", 6)] {
        served
            .state
            .apply_owned(
                id,
                Some("widget-maker"),
                Widget {
                    size,
                    label: id.into(),
                },
            )
            .unwrap();
    }
    // The kind's watch sees both writes; the watch of w2 only its own.
    assert_eq!(label(&all.next().await.unwrap().unwrap()).1, "w1");
    assert_eq!(label(&all.next().await.unwrap().unwrap()).1, "w2");
    let w2 = label(&one.next().await.unwrap().unwrap());
    assert_eq!(
        (w2.0, w2.1.as_str()),
        (pb::ResourceEventKind::Created, "w2")
    );
    served.stop().await;
}

#[tokio::test]
async fn dependencies_list_each_controller_with_the_kinds_and_namespaces_it_uses() {
    let served = Served::start().await;
    let mut client = served.client(Role::Reader).await;
    let answer = client
        .dependencies(pb::DependenciesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.controllers.len(), 1);
    let controller = &answer.controllers[0];
    assert_eq!(controller.name, "widget-maker");
    let mut deps: Vec<(String, String, pb::DependencyKind)> = controller
        .dependencies
        .iter()
        .map(|d| (d.namespace.clone(), d.r#type.clone(), d.kind()))
        .collect();
    deps.sort();
    assert_eq!(
        deps,
        vec![
            (
                "config".into(),
                ActiveService::TYPE.into(),
                pb::DependencyKind::StrongInput
            ),
            (
                "health".into(),
                HealthCheckStatus::TYPE.into(),
                pb::DependencyKind::WeakInput
            ),
            (
                "widgets".into(),
                Widget::TYPE.into(),
                pb::DependencyKind::ExclusiveOutput
            ),
        ]
    );
    served.stop().await;
}
