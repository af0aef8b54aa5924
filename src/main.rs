//! `scalable-analytics`: flags, logging, bind, then the library's server.

use std::process::ExitCode;

use scalable_analytics::Counting;

/// Counts allocated bytes for INFO `used_memory` and `--maxmemory`.
#[global_allocator]
static ALLOCATOR: Counting<std::alloc::System> = Counting(std::alloc::System);

use scalable_analytics::{Config, DEFAULT_LOG_LEVEL, Options};
use tokio::net::TcpListener;
use tracing_subscriber::{EnvFilter, fmt, prelude::*, reload};

fn main() -> ExitCode {
    let config = match Config::load(std::env::args_os().collect()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Before the store allocates anything large.
    scalable_analytics::use_huge_pages(config.huge_pages);
    let reload_handle = match init_tracing(config.log_level.as_deref()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // One single-threaded runtime per serving thread: connections are dealt to them
    // round-robin and never move, so no task is stolen across cores and a request's
    // wake-up stays on the thread that reads it (measured: docs/benchmarks.md).
    let runtime = match single_threaded() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let workers = match Workers::start(config.serving_threads() - 1) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let set_log_filter = move |text: &str| -> Result<(), String> {
        let f = EnvFilter::try_new(text).map_err(|e| format!("invalid log filter: {e}"))?;
        reload_handle.reload(f).map_err(|e| e.to_string())
    };
    let options = Options {
        set_log_filter: Some(Box::new(set_log_filter)),
        workers: workers.handles.clone(),
    };
    let code = runtime.block_on(run(config, options));
    workers.stop();
    code
}

type ReloadHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Logging to stderr through `tracing`, filtered by `--log-level`, else `RUST_LOG`,
/// else the default; the filter can be changed later (`CONFIG SET loglevel`).
fn init_tracing(level: Option<&str>) -> Result<ReloadHandle, String> {
    let filter_text = level
        .map(str::to_owned)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string());
    let filter = EnvFilter::try_new(&filter_text).map_err(|e| {
        format!("invalid --log-level '{filter_text}': {e}; try info, debug or warn")
    })?;
    let (filter, reload_handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_target(false)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    Ok(reload_handle)
}

/// The serving threads beyond the main one, each blocked on its runtime until stopped.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    stops: Vec<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

impl Workers {
    fn start(n: usize) -> Result<Workers, String> {
        let mut w = Workers {
            handles: Vec::new(),
            stops: Vec::new(),
        };
        for i in 1..=n {
            let rt =
                single_threaded().map_err(|e| format!("cannot start worker runtime {i}: {e}"))?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            w.handles.push(rt.handle().clone());
            let thread = std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    rt.block_on(async {
                        let _ = stopped.await;
                    })
                })
                .map_err(|e| format!("cannot start worker thread {i}: {e}"))?;
            w.stops.push((stop, thread));
        }
        Ok(w)
    }

    fn stop(self) {
        for (stop, thread) in self.stops {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// Binds, builds the server and serves until a signal or `SHUTDOWN`.
async fn run(config: Config, options: Options) -> ExitCode {
    let addr = std::net::SocketAddr::new(config.bind, config.port);
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {addr}: {e}; {}", listen_hint(e.kind()));
            return ExitCode::FAILURE;
        }
    };
    let handle = match scalable_analytics::build(&listener, config, options) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        threads = handle.threads(),
        shards = handle.shards(),
        clock = handle.clock_mode(),
        "serving"
    );
    let stop = stop_signal();
    tracing::info!("listening on {}", handle.local_addr());
    match scalable_analytics::serve(listener, handle, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// What to check when the port cannot be bound.
fn listen_hint(kind: std::io::ErrorKind) -> &'static str {
    match kind {
        std::io::ErrorKind::AddrInUse => {
            "another server is using the port; stop it or choose another with --port"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges; choose another with --port"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "the address is not one of this machine's; check --bind"
        }
        _ => "check --bind and --port",
    }
}

fn single_threaded() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled: a signal right after the `listening on` line
/// must stop the server gracefully (saving the window), not kill it.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
