//! The built-in server's services, called with tonic's generated clients over
//! real sockets.

mod common;

use std::time::Duration;

use common::start;
use grpcdoc::pb::echo::echo_client::EchoClient;
use grpcdoc::pb::echo::EchoRequest;
use grpcdoc::pb::helloworld::greeter_client::GreeterClient;
use grpcdoc::pb::helloworld::HelloRequest;
use grpcdoc::server::ServerConfig;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::Code;

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect")
}

fn dur(d: Duration) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    })
}

#[tokio::test]
async fn greeter_says_hello() {
    let t = start(ServerConfig::default()).await;
    let mut c = GreeterClient::new(channel(t.addr).await);
    let r = c
        .say_hello(HelloRequest {
            name: "world".into(),
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().message, "Hello world");
}

#[tokio::test]
async fn echo_unary_behaviours() {
    let t = start(ServerConfig::default()).await;
    let mut c = EchoClient::new(channel(t.addr).await);
    let r = c
        .unary(EchoRequest {
            message: "hi".into(),
            response_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.message, "hi");
    assert_eq!(r.payload.len(), 1000);
    assert!(r.connection_id >= 1);

    let err = c
        .unary(EchoRequest {
            status_code: Code::Unavailable as i32,
            status_message: "asked for".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.message(), "asked for");

    let err = c
        .unary(EchoRequest {
            response_size: u32::MAX,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // x-delay-ms metadata, as the grpc-go and C-core peers take it.
    let mut req = tonic::Request::new(EchoRequest::default());
    req.metadata_mut()
        .insert("x-delay-ms", "300".parse().unwrap());
    let started = std::time::Instant::now();
    c.unary(req).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn echo_streams() {
    let t = start(ServerConfig::default()).await;
    let mut c = EchoClient::new(channel(t.addr).await);
    let started = std::time::Instant::now();
    let mut s = c
        .server_stream(EchoRequest {
            message: "s".into(),
            stream_count: 4,
            stream_interval: dur(Duration::from_millis(50)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(r) = s.next().await {
        n += 1;
        assert_eq!(r.unwrap().received, n);
    }
    assert_eq!(n, 4);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let reqs = (0..3).map(|i| EchoRequest {
        message: format!("m{i}"),
        ..Default::default()
    });
    let r = c
        .client_stream(tokio_stream::iter(reqs.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.message.as_str(), r.received), ("m2", 3));

    let mut out = c
        .bidi_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut got = vec![];
    while let Some(r) = out.next().await {
        got.push(r.unwrap().message);
    }
    assert_eq!(got, ["m0", "m1", "m2"]);
}

#[tokio::test]
async fn server_default_delay_applies() {
    let t = start(ServerConfig {
        delay: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut c = GreeterClient::new(channel(t.addr).await);
    let started = std::time::Instant::now();
    c.say_hello(HelloRequest::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn health_check_and_watch() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let t = start(ServerConfig::default()).await;
    let mut c = HealthClient::new(channel(t.addr).await);
    for service in ["", "grpcdoc.echo.v1.Echo", "helloworld.Greeter"] {
        let r = c
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
    }
    let err = c
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Status set in-process reaches a watcher.
    let mut watch = c
        .watch(HealthCheckRequest {
            service: "helloworld.Greeter".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    t.server
        .health
        .set_service_status(
            "helloworld.Greeter",
            tonic_health::ServingStatus::NotServing,
        )
        .await;
    let next = tokio::time::timeout(Duration::from_secs(3), watch.next())
        .await
        .unwrap();
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_every_service() {
    let t = start(ServerConfig::default()).await;
    let ch = channel(t.addr).await;
    let want = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpcdoc.echo.v1.Echo",
        "helloworld.Greeter",
    ];

    {
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        let mut c = ServerReflectionClient::new(ch.clone());
        let reqs = [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("grpcdoc.echo.v1.EchoRequest".into()),
            MessageRequest::FileByFilename("google/protobuf/duration.proto".into()),
        ]
        .map(|m| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        });
        let mut out = c
            .server_reflection_info(tokio_stream::iter(reqs))
            .await
            .unwrap()
            .into_inner();
        match out.next().await.unwrap().unwrap().message_response.unwrap() {
            MessageResponse::ListServicesResponse(l) => {
                let mut names: Vec<_> = l.service.into_iter().map(|s| s.name).collect();
                names.sort();
                assert_eq!(names, want);
            }
            other => panic!("{other:?}"),
        }
        // echo.proto, and by name the duration.proto it imports.
        for want_name in [
            "grpcdoc/echo/v1/echo.proto",
            "google/protobuf/duration.proto",
        ] {
            match out.next().await.unwrap().unwrap().message_response.unwrap() {
                MessageResponse::FileDescriptorResponse(f) => {
                    use prost::Message;
                    let fd =
                        prost_types::FileDescriptorProto::decode(&f.file_descriptor_proto[0][..])
                            .unwrap();
                    assert_eq!(fd.name(), want_name);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    {
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        let mut c = ServerReflectionClient::new(ch);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut out = c
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        match out.next().await.unwrap().unwrap().message_response.unwrap() {
            MessageResponse::ListServicesResponse(l) => assert_eq!(l.service.len(), want.len()),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn delay_past_the_deadline_is_deadline_exceeded() {
    // A raw client: tonic's Channel would enforce grpc-timeout itself.
    let t = start(ServerConfig::default()).await;
    let mut c = common::RawClient::connect(t.addr).await;
    let started = std::time::Instant::now();
    let call = c
        .start_unary(
            "/helloworld.Greeter/SayHello",
            &common::hello("a"),
            &[("x-delay-ms", "3000"), ("grpc-timeout", "200m")],
        )
        .await;
    let (status, _) = call.await.unwrap().expect("call");
    assert_eq!(status, (Code::DeadlineExceeded as i32).to_string());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
}
