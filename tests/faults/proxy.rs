//! A fault-injecting HTTP proxy in front of the test cluster's kube-apiserver.
//!
//! The binary under test talks plain HTTP to the proxy on 127.0.0.1, through the kubeconfig that
//! [`Proxy::kubeconfig`] writes. The proxy forwards each request over TLS to `TEST_APISERVER_URL`
//! (or another server), trusting `TEST_CA_FILE`, unless a [`Rule`] responds in place of the server,
//! delays, rewrites or drops the request. Every request is logged with its method, path, query,
//! arrival time and the status sent back, so that a test can count what the binary sent.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A test step that runs before a request is forwarded, such as changing the object that the
/// request is about.
pub type Hook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the proxy does with a request that a rule matched.
#[derive(Clone)]
pub enum Action {
    /// Responds in place of the server; nothing is forwarded.
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// Forwards after this wait.
    Delay(Duration),
    /// Waits, then resets the connection without forwarding, as a server that stopped responding.
    Stall(Duration),
    /// Resets the connection (TCP RST) without forwarding and without a response.
    Reset,
    /// Forwards, so the server applies the request, then resets the connection instead of
    /// passing the response on: a response lost on the way back.
    LoseResponse,
    /// Runs a test step, then forwards.
    Before(Hook),
    /// Forwards, then edits the JSON body of the response.
    Rewrite(Arc<dyn Fn(&mut Value) + Send + Sync>),
    /// Forwards, then edits the headers of the response.
    EditHeaders(Arc<dyn Fn(&mut HeaderMap) + Send + Sync>),
}

impl Action {
    /// Builds a Kubernetes `Status` response with this code and a message that names the proxy.
    pub fn status(code: u16) -> Action {
        Action::status_message(
            code,
            &format!("HTTP {code} injected by the fault-injection proxy"),
        )
    }

    pub fn status_message(code: u16, message: &str) -> Action {
        Action::status_with_headers(code, message, &[])
    }

    pub fn status_with_headers(code: u16, message: &str, headers: &[(&str, &str)]) -> Action {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "",
        };
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code,
        });
        let mut all = vec![("content-type".to_owned(), "application/json".to_owned())];
        all.extend(
            headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        Action::Reply {
            status: code,
            headers: all,
            body: Bytes::from(body.to_string()),
        }
    }

    /// Builds a plain-text response, such as the `404 page not found` of a path that no API
    /// serves.
    pub fn text(code: u16, text: &str) -> Action {
        Action::Reply {
            status: code,
            headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
            body: Bytes::from(text.to_owned()),
        }
    }

    pub fn before<F, Fut>(step: F) -> Action
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Action::Before(Arc::new(move || Box::pin(step())))
    }

    pub fn rewrite(edit: impl Fn(&mut Value) + Send + Sync + 'static) -> Action {
        Action::Rewrite(Arc::new(edit))
    }

    pub fn edit_headers(edit: impl Fn(&mut HeaderMap) + Send + Sync + 'static) -> Action {
        Action::EditHeaders(Arc::new(edit))
    }
}

/// Which requests a rule applies to, and how often.
#[derive(Clone)]
pub struct Rule {
    method: Option<Method>,
    path: PathMatch,
    query: Option<String>,
    skip: u32,
    times: Option<u32>,
    action: Option<Action>,
}

#[derive(Clone)]
enum PathMatch {
    Any,
    /// A list of TrainJobs, namespaced or not.
    TrainJobList,
    /// One TrainJob, by any name or by this one.
    TrainJob(Option<String>),
    Contains(String),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::TrainJobList => path.ends_with("/trainjobs"),
            PathMatch::TrainJob(None) => path.contains("/trainjobs/"),
            PathMatch::TrainJob(Some(name)) => path.ends_with(&format!("/trainjobs/{name}")),
            PathMatch::Contains(text) => path.contains(text.as_str()),
        }
    }
}

impl Rule {
    fn new(method: Option<Method>, path: PathMatch) -> Rule {
        Rule {
            method,
            path,
            query: None,
            skip: 0,
            times: None,
            action: None,
        }
    }

    pub fn any() -> Rule {
        Rule::new(None, PathMatch::Any)
    }

    pub fn list_trainjobs() -> Rule {
        Rule::new(Some(Method::GET), PathMatch::TrainJobList)
    }

    pub fn get_trainjob() -> Rule {
        Rule::new(Some(Method::GET), PathMatch::TrainJob(None))
    }

    pub fn delete_trainjob() -> Rule {
        Rule::new(Some(Method::DELETE), PathMatch::TrainJob(None))
    }

    pub fn request(method: Method, path_contains: &str) -> Rule {
        Rule::new(Some(method), PathMatch::Contains(path_contains.to_owned()))
    }

    /// Only the TrainJob with this name.
    pub fn named(mut self, name: &str) -> Rule {
        self.path = PathMatch::TrainJob(Some(name.to_owned()));
        self
    }

    /// Only requests whose query contains this text, such as `continue=`.
    pub fn query(mut self, text: &str) -> Rule {
        self.query = Some(text.to_owned());
        self
    }

    /// Lets the first `n` matching requests through untouched.
    pub fn after(mut self, n: u32) -> Rule {
        self.skip = n;
        self
    }

    /// Applies to at most `n` requests, then lets the rest through.
    pub fn times(mut self, n: u32) -> Rule {
        self.times = Some(n);
        self
    }

    pub fn then(mut self, action: Action) -> Rule {
        self.action = Some(action);
        self
    }

    fn matches(&self, method: &Method, path: &str, query: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && self.path.matches(path)
            && self
                .query
                .as_deref()
                .is_none_or(|text| query.contains(text))
    }
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub arrived: Instant,
    /// The status sent back; `None` for a reset connection or one still open.
    pub status: Option<u16>,
    /// True when a rule applied to the request.
    pub injected: bool,
}

impl Exchange {
    pub fn is_trainjob_list(&self) -> bool {
        self.method == Method::GET && self.path.ends_with("/trainjobs")
    }

    pub fn is_trainjob_delete(&self) -> bool {
        self.method == Method::DELETE && self.path.contains("/trainjobs/")
    }
}

struct RuleState {
    rule: Rule,
    seen: u32,
    applied: u32,
}

struct Shared {
    upstream: Upstream,
    upstream_base: String,
    rules: Mutex<Vec<RuleState>>,
    exchanges: Mutex<Vec<Exchange>>,
    /// Requests in flight now and the maximum in flight at once, by method.
    in_flight: Mutex<Vec<(Method, u32, u32)>>,
}

/// A running proxy. Dropping it stops the listener and closes every connection.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Proxy {
    /// Starts a proxy to the test cluster's API server (`TEST_APISERVER_URL`, `TEST_CA_FILE`).
    pub async fn start() -> Proxy {
        Proxy::start_to(
            &crate::support::env_var("TEST_APISERVER_URL"),
            Path::new(&crate::support::env_var("TEST_CA_FILE")),
            &crate::support::env_var("TEST_ADMIN_TOKEN"),
        )
        .await
    }

    /// Starts a proxy to another API server. `token` goes into the kubeconfig the binary reads.
    pub async fn start_to(server: &str, ca_file: &Path, token: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy to a port on 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream_client(ca_file),
            upstream_base: server.trim_end_matches('/').to_owned(),
            rules: Mutex::new(Vec::new()),
            exchanges: Mutex::new(Vec::new()),
            in_flight: Mutex::new(Vec::new()),
        });
        let server = tokio::spawn(accept(listener, Arc::clone(&shared)));
        let dir = tempfile::tempdir().expect("create a folder for the kubeconfig");
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: proxy, cluster: {{server: 'http://{addr}'}}}}]\n\
             users: [{{name: admin, user: {{token: '{token}'}}}}]\n\
             contexts: [{{name: proxy, context: {{cluster: proxy, user: admin}}}}]\n\
             current-context: proxy\n"
        );
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).expect("write the kubeconfig");
        Proxy {
            addr,
            shared,
            dir,
            server,
        }
    }

    /// Returns the path of a kubeconfig with `server: http://127.0.0.1:PORT` of this proxy and
    /// the admin token.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a rule after the existing ones; the first rule that matches a request applies.
    pub fn add(&self, rule: Rule) {
        assert!(rule.action.is_some(), "a rule needs an action");
        self.shared.rules.lock().unwrap().push(RuleState {
            rule,
            seen: 0,
            applied: 0,
        });
    }

    pub fn clear_rules(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Returns every request received so far, in order of arrival.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.exchanges.lock().unwrap().clone()
    }

    pub fn count(&self, predicate: impl Fn(&Exchange) -> bool) -> usize {
        self.exchanges().iter().filter(|e| predicate(e)).count()
    }

    pub fn lists(&self) -> usize {
        self.count(Exchange::is_trainjob_list)
    }

    pub fn deletes(&self) -> usize {
        self.count(Exchange::is_trainjob_delete)
    }

    /// Requests other than GET: deletions, and also access reviews (POST).
    pub fn writes(&self) -> Vec<Exchange> {
        self.exchanges()
            .into_iter()
            .filter(|e| e.method != Method::GET)
            .collect()
    }

    /// Returns the maximum number of requests of this method that were in flight at once.
    pub fn max_in_flight(&self, method: &Method) -> u32 {
        self.shared
            .in_flight
            .lock()
            .unwrap()
            .iter()
            .find(|(m, _, _)| m == method)
            .map_or(0, |(_, _, max)| *max)
    }

    /// Lists every request with its time, method, path and status, for assertion messages.
    pub fn describe(&self) -> String {
        let exchanges = self.exchanges();
        let Some(first) = exchanges.first().map(|e| e.arrived) else {
            return "the proxy received no request".to_owned();
        };
        exchanges
            .iter()
            .map(|e| {
                format!(
                    "{:>6} ms  {} {}{}{} -> {}{}",
                    e.arrived.duration_since(first).as_millis(),
                    e.method,
                    e.path,
                    if e.query.is_empty() { "" } else { "?" },
                    e.query,
                    e.status.map_or("reset".to_owned(), |s| s.to_string()),
                    if e.injected { " (injected)" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn upstream_client(ca_file: &Path) -> Upstream {
    let mut roots = rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca_file)
        .unwrap_or_else(|err| panic!("read the CA file {}: {err}", ca_file.display()));
    for certificate in certificates {
        roots
            .add(certificate.expect("a PEM certificate"))
            .expect("add the CA certificate");
    }
    // ring, as kube uses in this build. rustls 0.23.48 deprecates it for lacking post-quantum key
    // exchange, which does not matter on a loopback connection to a test server.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    // Dropping the set when this task is aborted closes every open connection.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let reset = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(ResettableStream {
            inner: stream,
            reset: Arc::clone(&reset),
        });
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                handle(Arc::clone(&shared), Arc::clone(&reset), request)
            });
            // The proxy forwards the server's Date header, or none when a rule removes it.
            let _ = hyper::server::conn::http1::Builder::new()
                .auto_date_header(false)
                .serve_connection(io, service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// The error a handler returns to make hyper drop the connection without a response.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the fault-injection proxy")
    }
}

impl std::error::Error for ResetConnection {}

/// Counts a request in flight until dropped, also when the client goes away mid-request.
struct InFlight<'a> {
    shared: &'a Shared,
    method: Method,
}

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared, method: &Method) -> InFlight<'a> {
        let mut all = shared.in_flight.lock().unwrap();
        match all.iter_mut().find(|(m, _, _)| m == method) {
            Some((_, now, max)) => {
                *now += 1;
                *max = (*max).max(*now);
            }
            None => all.push((method.clone(), 1, 1)),
        }
        InFlight {
            shared,
            method: method.clone(),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut all = self.shared.in_flight.lock().unwrap();
        if let Some((_, now, _)) = all.iter_mut().find(|(m, _, _)| *m == self.method) {
            *now -= 1;
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ResetConnection> {
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let index = {
        let mut exchanges = shared.exchanges.lock().unwrap();
        exchanges.push(Exchange {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            arrived: Instant::now(),
            status: None,
            injected: false,
        });
        exchanges.len() - 1
    };
    let _in_flight = InFlight::enter(&shared, &method);
    let action = pick_action(&shared, &method, &path, &query);
    let ruled = action.is_some();
    let record = |status: Option<u16>, injected: bool| {
        let mut exchanges = shared.exchanges.lock().unwrap();
        exchanges[index].status = status;
        exchanges[index].injected = injected;
    };
    let drop_connection = || {
        reset.store(true, Ordering::SeqCst);
        Err(ResetConnection)
    };
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return drop_connection(),
    };

    let forwarded = match action {
        Some(Action::Reply {
            status,
            headers,
            body,
        }) => {
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            record(Some(status), true);
            return Ok(response.body(Full::new(body)).expect("a valid response"));
        }
        Some(Action::Reset) => {
            record(None, true);
            return drop_connection();
        }
        Some(Action::Stall(wait)) => {
            tokio::time::sleep(wait).await;
            record(None, true);
            return drop_connection();
        }
        Some(Action::LoseResponse) => {
            let status = forward(&shared, &parts, body)
                .await
                .map(|(status, _, _)| status.as_u16());
            record(status, true);
            return drop_connection();
        }
        Some(Action::Delay(wait)) => {
            tokio::time::sleep(wait).await;
            forward(&shared, &parts, body).await
        }
        Some(Action::Before(step)) => {
            step().await;
            forward(&shared, &parts, body).await
        }
        Some(Action::Rewrite(edit)) => {
            forward(&shared, &parts, body)
                .await
                .map(|(status, headers, body)| {
                    let edited = match serde_json::from_slice::<Value>(&body) {
                        Ok(mut value) => {
                            edit(&mut value);
                            Bytes::from(value.to_string())
                        }
                        Err(_) => body,
                    };
                    (status, headers, edited)
                })
        }
        Some(Action::EditHeaders(edit)) => {
            forward(&shared, &parts, body)
                .await
                .map(|(status, mut headers, body)| {
                    edit(&mut headers);
                    (status, headers, body)
                })
        }
        None => forward(&shared, &parts, body).await,
    };
    let Some((status, headers, body)) = forwarded else {
        // The server is not there or broke the connection: pass that on as a reset.
        record(None, ruled);
        return drop_connection();
    };
    record(Some(status.as_u16()), ruled);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

fn pick_action(shared: &Shared, method: &Method, path: &str, query: &str) -> Option<Action> {
    let mut rules = shared.rules.lock().unwrap();
    for state in rules.iter_mut() {
        if !state.rule.matches(method, path, query) {
            continue;
        }
        if state.rule.times.is_some_and(|n| state.applied >= n) {
            continue;
        }
        state.seen += 1;
        if state.seen <= state.rule.skip {
            continue;
        }
        state.applied += 1;
        return state.rule.action.clone();
    }
    None
}

/// Headers that describe one connection, not the message, so they are not passed on.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::HOST,
    header::CONTENT_LENGTH,
];

fn copy_headers(from: &HeaderMap) -> HeaderMap {
    let mut headers = from.clone();
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers
}

async fn forward(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Bytes,
) -> Option<(StatusCode, HeaderMap, Bytes)> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{path_and_query}", shared.upstream_base))
        .body(Full::new(body))
        .expect("a valid upstream request");
    *request.headers_mut() = copy_headers(&parts.headers);
    let response = shared.upstream.request(request).await.ok()?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.ok()?.to_bytes();
    Some((parts.status, copy_headers(&parts.headers), body))
}

/// A client connection that ends with a TCP reset instead of a FIN once `reset` is set.
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            // SO_LINGER of zero makes close() send RST: the client sees "connection reset".
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
