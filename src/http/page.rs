//! `GET /`: the live page, one self-contained file (`live.html`: inline CSS and
//! script, system fonts, the chart drawn in SVG by its own code), so it works on
//! networks without Internet access. Its Content-Security-Policy forbids loading
//! anything else, so a stray external reference fails loudly in a browser.
//!
//! It polls `/api/window` every second and `/api/top` when that answers. Elements
//! showing a figure carry a stable `id` and the raw number in `data-value`.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

/// The page.
const PAGE: &str = include_str!("live.html");

/// Inline script and style only, requests to this server only, no framing.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// `GET /`.
pub async fn index() -> Response {
    let mut resp = Html(PAGE).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}
