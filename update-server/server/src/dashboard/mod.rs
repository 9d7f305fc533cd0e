//! The web dashboard: one static page, script and style embedded in the binary (no CDN,
//! no build step). The page takes the operator token from the URL fragment
//! (`/dashboard/#token=…`, never sent to the server in a URL), keeps it in
//! sessionStorage, and calls `/api/v1/…` with it.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use tonic::body::Body;

/// Where the dashboard lives.
pub const DASHBOARD_PREFIX: &str = "/dashboard";

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// The asset at `path` (under [`DASHBOARD_PREFIX`]), or 404.
pub fn asset(path: &str) -> Response<Body> {
    let rest = path.strip_prefix(DASHBOARD_PREFIX).unwrap_or("");
    let (body, kind) = match rest {
        "" | "/" | "/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => ("not found\n", "text/plain; charset=utf-8"),
    };
    let mut r = Response::new(Body::new(Full::new(Bytes::from_static(body.as_bytes()))));
    if !matches!(rest, "" | "/" | "/index.html" | "/app.js" | "/style.css") {
        *r.status_mut() = StatusCode::NOT_FOUND;
    }
    let h = r.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    // Only our own script and style, and fetches to this origin.
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}
