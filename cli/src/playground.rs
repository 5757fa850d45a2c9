//! `mtls-authz playground`: the browser playground on 127.0.0.1, from the
//! copy of the page embedded in this binary (cli/build.rs).
//!
//! Loopback only and GET only: the page is static and computes everything in
//! the browser, so the server never sees a policy or a certificate.

use clap::Args;

use crate::console::Console;
use crate::input::InputError;
use crate::Exit;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/playground_assets.rs"));
}

/// Served when the binary was built before the page was.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>mtls-authz playground</title>\
<h1>The playground was not built into this binary</h1>\
<p>Run <code>bash scripts/build.sh</code> (it builds the page, then the CLI), then <code>mtls-authz playground</code> again.</p>";

#[derive(Debug, Args)]
pub struct PlaygroundArgs {
    /// The port on 127.0.0.1; 0 picks a free one (the address is printed).
    #[arg(long, default_value_t = 8787)]
    port: u16,
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The file for a request path: `/` is the page; the query is ignored.
fn asset(url: &str) -> Option<(&'static str, &'static [u8])> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let name = match path.trim_start_matches('/') {
        "" => "index.html",
        other => other,
    };
    if !assets::BUILT {
        return (name == "index.html").then_some(("index.html", NOT_BUILT.as_bytes()));
    }
    assets::ASSETS.iter().find(|(n, _)| *n == name).map(|(n, bytes)| (*n, *bytes))
}

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

/// Serve until stopped. Prints the address first, so a script can read it.
pub fn run(args: &PlaygroundArgs, console: &mut Console<'_>) -> Result<Exit, InputError> {
    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| InputError(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    let port = server.server_addr().to_ip().map_or(args.port, |a| a.port());
    if !assets::BUILT {
        console.err("mtls-authz: this binary was built without the playground page; run bash scripts/build.sh");
    }
    console.out(&format!("mtls-authz playground: http://127.0.0.1:{port}/ (Ctrl-C to stop)"));
    console.flush();
    for request in server.incoming_requests() {
        let response = match (request.method(), asset(request.url())) {
            (tiny_http::Method::Get | tiny_http::Method::Head, Some((name, bytes))) => {
                let mut r = tiny_http::Response::from_data(bytes.to_vec());
                for h in [
                    header("Content-Type", content_type(name)),
                    header("Cache-Control", "no-cache"),
                    header("X-Content-Type-Options", "nosniff"),
                ]
                .into_iter()
                .flatten()
                {
                    r = r.with_header(h);
                }
                r.with_status_code(200)
            }
            (tiny_http::Method::Get | tiny_http::Method::Head, None) => {
                tiny_http::Response::from_data(b"not found\n".to_vec()).with_status_code(404)
            }
            _ => tiny_http::Response::from_data(b"method not allowed\n".to_vec()).with_status_code(405),
        };
        // A client that went away is its own business; keep serving the others.
        let _ = request.respond(response);
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_page_and_unknown_paths_are_not_found() {
        let (name, bytes) = asset("/?x=1").unwrap();
        assert_eq!(name, "index.html");
        assert!(String::from_utf8_lossy(bytes).contains("playground"));
        assert!(asset("/nope/../../etc/passwd").is_none());
        assert_eq!(content_type("pkg/x_bg.wasm"), "application/wasm");
    }
}
