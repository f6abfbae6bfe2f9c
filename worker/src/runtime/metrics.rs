//! Prometheus metrics of one worker (DESIGN §12), served on
//! `[metrics] listen` (off by default) as the Prometheus text format at
//! `GET /metrics`. Counters and histograms are recorded where things
//! happen (the job runner, its progress forwarder, the lanes, the health
//! monitor); the NATS connection, the outbox and the database size are
//! sampled when scraped. One registry per worker, passed down: no global.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::Worker;
use crate::shutdown::Shutdown;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    domain: String,
    service: String,
}

fn seconds_histogram() -> Histogram {
    // 0.1 s … ~55 min.
    Histogram::new(exponential_buckets(0.1, 2.0, 16))
}

/// The worker's metrics (see the README's table).
pub struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    job_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
    step_seconds: Family<StepLabels, Histogram, fn() -> Histogram>,
    lane_waiting: Gauge,
    image_bytes: Counter,
    healthy: Family<ServiceLabels, Gauge>,
    nats_connected: Gauge,
    outbox: Gauge,
    database_bytes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered under `hostkit_`.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hostkit");
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Jobs that ended, by kind and outcome (succeeded, failed, superseded)",
            jobs.clone(),
        );
        let job_seconds = Family::new_with_constructor(seconds_histogram as fn() -> Histogram);
        registry.register(
            "job_duration_seconds",
            "How long jobs ran, by kind",
            job_seconds.clone(),
        );
        let step_seconds = Family::new_with_constructor(seconds_histogram as fn() -> Histogram);
        registry.register(
            "step_duration_seconds",
            "How long each step of a job took (check, images, apply, rollback, backup, …)",
            step_seconds.clone(),
        );
        let lane_waiting = Gauge::default();
        registry.register(
            "lane_queue_depth",
            "Jobs delivered to this worker and waiting in their domain's lane",
            lane_waiting.clone(),
        );
        let image_bytes = Counter::default();
        registry.register(
            "image_bytes_loaded",
            "Bytes of image tarballs and blobs streamed into the engine",
            image_bytes.clone(),
        );
        let healthy = Family::<ServiceLabels, Gauge>::default();
        registry.register(
            "service_healthy",
            "1 while a service's last health event says healthy, 0 after unhealthy, exited, OOM or restarting",
            healthy.clone(),
        );
        let nats_connected = Gauge::default();
        registry.register(
            "nats_connected",
            "1 while the worker is connected to NATS",
            nats_connected.clone(),
        );
        let outbox = Gauge::default();
        registry.register(
            "outbox_length",
            "Events recorded and not yet published to NATS",
            outbox.clone(),
        );
        let database_bytes = Gauge::default();
        registry.register(
            "sqlite_bytes",
            "Size of the worker's SQLite database file (with its WAL)",
            database_bytes.clone(),
        );
        Metrics {
            registry,
            jobs,
            job_seconds,
            step_seconds,
            lane_waiting,
            image_bytes,
            healthy,
            nats_connected,
            outbox,
            database_bytes,
        }
    }

    /// A job ended.
    pub fn job_ended(&self, kind: &str, outcome: &str, took: Duration) {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.job_seconds
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A job was superseded before it ran (counted, not timed).
    pub fn job_superseded(&self, kind: &str) {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome: "superseded".to_owned(),
            })
            .inc();
    }

    /// A step of a job took `took`.
    pub fn step_took(&self, step: &str, took: Duration) {
        self.step_seconds
            .get_or_create(&StepLabels {
                step: step.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// More image bytes reached the engine.
    pub fn image_bytes(&self, bytes: u64) {
        self.image_bytes.inc_by(bytes);
    }

    /// How many jobs wait in lanes now.
    pub fn lane_waiting(&self, waiting: usize) {
        self.lane_waiting.set(waiting as i64);
    }

    /// A service's health changed.
    pub fn service_health(&self, domain: &str, service: &str, healthy: bool) {
        self.healthy
            .get_or_create(&ServiceLabels {
                domain: domain.to_owned(),
                service: service.to_owned(),
            })
            .set(i64::from(healthy));
    }

    /// The text exposition, after sampling what is read at scrape time.
    pub async fn render(&self, worker: &Worker, nats: &async_nats::Client) -> String {
        self.nats_connected.set(i64::from(
            nats.connection_state() == async_nats::connection::State::Connected,
        ));
        if let Ok(n) = worker.store.outbox_len().await {
            self.outbox.set(n as i64);
        }
        let location = worker.store.location();
        // Off the executor's threads, like every file operation.
        let mut bytes = 0;
        for suffix in ["", "-wal"] {
            if let Ok(meta) = tokio::fs::metadata(format!("{location}{suffix}")).await {
                bytes += meta.len();
            }
        }
        self.database_bytes.set(bytes as i64);
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "metrics not encoded");
        }
        text
    }
}

/// Serve `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    worker: Arc<Worker>,
    nats: async_nats::Client,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "serving metrics on /metrics");
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = shutdown.recv() => return Ok(()),
        };
        let (worker, nats) = (Arc::clone(&worker), nats.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let (worker, nats) = (Arc::clone(&worker), nats.clone());
                    async move {
                        let response = if request.uri().path() == "/metrics" {
                            let text = worker.metrics.render(&worker, &nats).await;
                            Response::builder()
                                .header(
                                    "content-type",
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )
                                .body(Full::new(Bytes::from(text)))
                        } else {
                            Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Full::new(Bytes::from_static(b"only /metrics here\n")))
                        };
                        Ok::<_, hyper::http::Error>(response.expect("a valid response"))
                    }
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%error, "metrics connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_metric_with_its_labels() {
        let metrics = Metrics::new();
        metrics.job_ended("deploy", "succeeded", Duration::from_millis(1500));
        metrics.step_took("images", Duration::from_millis(300));
        metrics.image_bytes(4096);
        metrics.lane_waiting(2);
        metrics.service_health("example.com", "web", true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        for needle in [
            "hostkit_jobs_total{kind=\"deploy\",outcome=\"succeeded\"} 1",
            "hostkit_job_duration_seconds_count{kind=\"deploy\"} 1",
            "hostkit_step_duration_seconds_count{step=\"images\"} 1",
            "hostkit_image_bytes_loaded_total 4096",
            "hostkit_lane_queue_depth 2",
            "hostkit_service_healthy{domain=\"example.com\",service=\"web\"} 1",
            "hostkit_nats_connected 0",
            "hostkit_outbox_length 0",
            "hostkit_sqlite_bytes 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
