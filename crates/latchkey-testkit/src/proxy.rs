//! A TCP proxy in front of PostgreSQL or Redis that a test cuts and restores,
//! to prove outages are survived without touching the machine's services.
//! Cutting closes the listener's door and resets every live connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TcpProxy {
    /// Listens on a loopback port and forwards to `target` (a loopback address).
    pub fn start(target: SocketAddr) -> TcpProxy {
        assert!(target.ip().is_loopback(), "the proxy forwards to loopback only");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let up2 = Arc::clone(&up);
        let gen_rx = generation.subscribe();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else { return };
                loop {
                    tokio::select! {
                        _ = &mut shutdown_rx => break,
                        accepted = listener.accept() => {
                            let Ok((inbound, _)) = accepted else { continue };
                            if !up2.load(Ordering::SeqCst) {
                                let _ = inbound.set_zero_linger();
                                drop(inbound);
                                continue;
                            }
                            let mut gen_rx = gen_rx.clone();
                            let born = *gen_rx.borrow();
                            tokio::spawn(async move {
                                let Ok(outbound) = TcpStream::connect(target).await else { return };
                                let (mut a, mut b) = (inbound, outbound);
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                                    _ = async { while gen_rx.changed().await.is_ok() { if *gen_rx.borrow() != born { break } } } => {
                                        let _ = a.set_zero_linger();
                                    }
                                }
                            });
                        }
                    }
                }
            });
        });
        TcpProxy { addr, up, generation, shutdown: Some(shutdown_tx), thread: Some(thread) }
    }

    /// Refuses new connections and resets the live ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
