//! A relying app's back-channel endpoint on loopback: records every POST
//! body it receives and answers 200 (or what the test sets).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request the sink answered 200: its headers (names lower-cased) and body.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub struct HttpSink {
    pub url: String,
    bodies: Arc<Mutex<Vec<ReceivedRequest>>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpSink {
    /// Listens on 127.0.0.1; `url` is `http://127.0.0.1:PORT/backchannel`.
    pub async fn start() -> HttpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let port = listener.local_addr().expect("address").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (b, st) = (bodies.clone(), status.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (b, st) = (b.clone(), st.clone());
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let mut length = 0usize;
                    let mut headers = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                        }
                    }
                    let mut body = vec![0u8; length.min(1 << 20)];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let code = st.load(Ordering::SeqCst);
                    if code == 200 {
                        let body = String::from_utf8_lossy(&body).into_owned();
                        b.lock().unwrap_or_else(|p| p.into_inner()).push(ReceivedRequest { headers, body });
                    }
                    let reply = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = reader.into_inner().write_all(reply.as_bytes()).await;
                });
            }
        });
        HttpSink { url: format!("http://127.0.0.1:{port}/backchannel"), bodies, status, task }
    }

    /// The bodies of the requests answered 200 so far.
    pub fn bodies(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.body).collect()
    }

    /// The requests answered 200 so far, headers included.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.bodies.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Answers every later request with `code` (and does not record it
    /// unless 200).
    pub fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    /// Waits until `n` bodies arrived (panics after 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = self.bodies();
            if got.len() >= n {
                return got;
            }
            assert!(std::time::Instant::now() < until, "expected {n} back-channel calls, got {}", got.len());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
