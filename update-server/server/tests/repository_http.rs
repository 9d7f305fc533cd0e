//! Repository hosting over real HTTP on 127.0.0.1: ranges, strong ETags and
//! `If-None-Match`, cache headers by kind of file, and refused paths.

mod support;

use skerry_release::Expiries;
use support::*;

/// The path of the (only) content-addressed pack under targets/.
fn pack_path(srv: &std::path::Path) -> (String, Vec<u8>) {
    let dir = srv.join("repository/targets/pi/1.0.0");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".image.pack") {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            return (format!("/repository/targets/pi/1.0.0/{name}"), bytes);
        }
    }
    panic!("no pack in {}", dir.display());
}

async fn server() -> TestServer {
    TestServer::start(
        |srv, keys| publish(srv, keys, &[("1.0.0", "stable")], &Expiries::default()),
        |_| {},
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_ranges_etags_and_cache_headers() {
    let s = server().await;
    let addr = s.addr;
    let srv = s.srv();
    tokio::task::spawn_blocking(move || {
        let (pack, bytes) = pack_path(&srv);
        let len = bytes.len();
        assert!(len > 100);

        let whole = get(addr, &pack, &[]);
        assert_eq!(whole.status, 200);
        assert_eq!(whole.body, bytes);
        assert_eq!(
            whole.header("content-length"),
            Some(len.to_string().as_str())
        );
        assert_eq!(
            whole.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(whole.header("accept-ranges"), Some("bytes"));
        let etag = whole.header("etag").unwrap().to_string();
        assert!(etag.starts_with("\"b3-") && etag.ends_with('"'), "{etag}");

        let part = get(addr, &pack, &[("Range", "bytes=10-19")]);
        assert_eq!(part.status, 206);
        assert_eq!(part.body, &bytes[10..20]);
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes 10-19/{len}").as_str())
        );
        let tail = get(addr, &pack, &[("Range", "bytes=-5")]);
        assert_eq!(
            (tail.status, tail.body.as_slice()),
            (206, &bytes[len - 5..])
        );
        let open = get(addr, &pack, &[("Range", &format!("bytes={}-", len - 3))]);
        assert_eq!(
            (open.status, open.body.as_slice()),
            (206, &bytes[len - 3..])
        );
        let clamped = get(
            addr,
            &pack,
            &[("Range", &format!("bytes={}-{}", len - 2, len + 100))],
        );
        assert_eq!(
            (clamped.status, clamped.body.as_slice()),
            (206, &bytes[len - 2..])
        );

        let past = get(addr, &pack, &[("Range", &format!("bytes={len}-"))]);
        assert_eq!(past.status, 416);
        assert_eq!(
            past.header("content-range"),
            Some(format!("bytes */{len}").as_str())
        );
        assert_eq!(get(addr, &pack, &[("Range", "bytes=-0")]).status, 416);
        let several = get(addr, &pack, &[("Range", "bytes=0-1,5-6")]);
        assert_eq!(several.status, 416);
        assert!(String::from_utf8_lossy(&several.body).contains("one range per request"));
        // Bad syntax or another unit: the header is ignored, the whole file comes.
        for ignored in [
            "bytes=5-2",
            "bytes=x-3",
            "items=0-1",
            "bytes=99999999999999999999999-",
        ] {
            let r = get(addr, &pack, &[("Range", ignored)]);
            assert_eq!((r.status, r.body.len()), (200, len), "{ignored}");
        }

        let not_modified = get(addr, &pack, &[("If-None-Match", &etag)]);
        assert_eq!(not_modified.status, 304);
        assert!(not_modified.body.is_empty());
        assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
        assert_eq!(
            get(addr, &pack, &[("If-None-Match", "\"other\", *")]).status,
            304
        );
        assert_eq!(
            get(addr, &pack, &[("If-None-Match", "\"other\"")]).status,
            200
        );
        // If-Range with a stale tag: the whole (new) file instead of a range of it.
        assert_eq!(
            get(
                addr,
                &pack,
                &[("Range", "bytes=0-1"), ("If-Range", "\"stale\"")]
            )
            .status,
            200
        );
        assert_eq!(
            get(addr, &pack, &[("Range", "bytes=0-1"), ("If-Range", &etag)]).status,
            206
        );

        let head = request(addr, "HEAD", &pack, &[]);
        assert_eq!((head.status, head.body.len()), (200, 0));
        assert_eq!(
            head.header("content-length"),
            Some(len.to_string().as_str())
        );
        assert_eq!(request(addr, "PUT", &pack, &[]).status, 405);

        let ts = get(addr, "/repository/metadata/timestamp.json", &[]);
        assert_eq!(ts.status, 200);
        assert_eq!(ts.header("cache-control"), Some("public, max-age=30"));
        assert_eq!(ts.header("content-type"), Some("application/json"));
        let root = get(addr, "/repository/metadata/1.root.json", &[]);
        assert_eq!(root.header("cache-control"), Some("public, max-age=300"));
    })
    .await
    .unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_file_gets_a_new_etag() {
    let s = server().await;
    let addr = s.addr;
    let ts = s.srv().join("repository/metadata/timestamp.json");
    tokio::task::spawn_blocking(move || {
        let first = get(addr, "/repository/metadata/timestamp.json", &[])
            .header("etag")
            .unwrap()
            .to_string();
        let again = get(addr, "/repository/metadata/timestamp.json", &[])
            .header("etag")
            .unwrap()
            .to_string();
        assert_eq!(first, again);
        let mut bytes = std::fs::read(&ts).unwrap();
        bytes.push(b' ');
        let tmp = ts.with_extension("new");
        std::fs::write(&tmp, &bytes).unwrap();
        std::fs::rename(&tmp, &ts).unwrap();
        let r = get(
            addr,
            "/repository/metadata/timestamp.json",
            &[("If-None-Match", &first)],
        );
        assert_eq!(r.status, 200);
        assert_ne!(r.header("etag").unwrap(), first);
        assert_eq!(r.body, bytes);
    })
    .await
    .unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_outside_the_repository_or_not_files_are_refused() {
    let s = server().await;
    let addr = s.addr;
    let srv = s.srv();
    // A symlink inside the repository pointing out of it, and a secret beside it.
    std::fs::write(srv.join("secret"), b"not for devices").unwrap();
    std::os::unix::fs::symlink(srv.join("secret"), srv.join("repository/targets/escape")).unwrap();
    std::fs::write(srv.join("repository/metadata/timestamp.json.tmp"), b"half").unwrap();
    tokio::task::spawn_blocking(move || {
        let cases = [
            ("/repository/../fleet.db", 400),
            ("/repository/metadata/../../fleet.db", 400),
            ("/repository/metadata/%2e%2e/%2e%2e/fleet.db", 400),
            ("/repository/metadata//timestamp.json", 400),
            ("/repository/./metadata/timestamp.json", 400),
            ("/repository/keys/timestamp.key", 400),
            ("/repository/metadata/timestamp.json.tmp", 400),
            ("/repository/metadata/a\\b", 400),
            ("/repository/targets/escape", 403),
            ("/repository/targets/pi", 404),
            ("/repository/targets/pi/1.0.0", 404),
            ("/repository/metadata/99.root.json", 404),
            ("/repository/metadata/timestamp.json/x", 404),
            ("/elsewhere", 404),
        ];
        for (target, status) in cases {
            let r = get(addr, target, &[]);
            assert_eq!(
                r.status,
                status,
                "{target}: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert!(
                !String::from_utf8_lossy(&r.body).contains("not for devices"),
                "{target}"
            );
        }
        let dir = get(addr, "/repository/targets/pi", &[]);
        assert!(
            String::from_utf8_lossy(&dir.body).contains("directory"),
            "{dir:?}"
        );
        let long = format!("/repository/targets/{}", "a/".repeat(600));
        assert_eq!(get(addr, &long, &[]).status, 400);
        let deep = format!("/repository/targets/{}x", "a/".repeat(20));
        assert_eq!(get(addr, &deep, &[]).status, 400);
    })
    .await
    .unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_directory_is_created_and_serves_an_empty_repository() {
    let s = TestServer::start(|_, _| {}, |_| {}).await;
    let srv = s.srv();
    assert!(srv.join("fleet.db").is_file());
    assert!(srv.join("repository/metadata").is_dir());
    assert!(srv.join("repository/targets").is_dir());
    let addr = s.addr;
    let r =
        tokio::task::spawn_blocking(move || get(addr, "/repository/metadata/timestamp.json", &[]))
            .await
            .unwrap();
    assert_eq!(r.status, 404);
    s.stop().await;
}
